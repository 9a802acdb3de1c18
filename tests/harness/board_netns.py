"""Run inside a private network namespace (``unshare -n``, root): give its loopback device a
non-loopback address, start ``abcitrain board`` bound to that address, and ask it what a
browser without, with a wrong and with the right token gets. Prints one JSON object.

Nothing leaves the namespace: its only device is its own loopback, so the "non-loopback"
address is reachable from inside it only. The board is stopped by its PID.

Usage: board_netns.py ADDRESS TOKEN_FILE BOARD_FILE
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

from procs import stop


def _ask(host: str, port: int, path: str, headers: dict[str, str] | None = None,
         method: str = "GET") -> dict[str, object]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(method, path, headers=headers or {})
    reply = conn.getresponse()
    body = reply.read().decode("utf-8", "replace")
    conn.close()
    return {"status": reply.status, "location": reply.getheader("location"),
            "cookie": reply.getheader("set-cookie"), "body": body[:20000]}


def main() -> None:
    address, token_file, board_file = sys.argv[1:4]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    token = Path(token_file).read_text().strip()
    found: dict[str, object] = {}
    without = subprocess.run([sys.executable, "-m", "abcitrain.cli", "board", board_file,
                              "--host", address, "--port", "0"],
                             capture_output=True, text=True, timeout=120)
    found["without_token_file"] = {"code": without.returncode, "output": without.stderr}
    board = subprocess.Popen([sys.executable, "-m", "abcitrain.cli", "board", board_file,
                              "--host", address, "--port", "0", "--token-file", token_file],
                             stderr=subprocess.PIPE, text=True)
    try:
        assert board.stderr is not None
        line = board.stderr.readline()        # "board for N teams at http://ADDR:PORT/ ..."
        found["announced"] = line
        port = int(line.split(f"http://{address}:", 1)[1].split("/", 1)[0])
        found["no_token"] = _ask(address, port, "/")
        found["no_token_data"] = _ask(address, port, "/data.json")
        found["wrong_token"] = _ask(address, port, "/?token=" + "x" * len(token))
        found["wrong_bearer"] = _ask(address, port, "/data.json",
                                     {"Authorization": "Bearer " + "y" * len(token)})
        right = _ask(address, port, "/?token=" + token)
        found["right_token"] = right
        cookie = str(right["cookie"] or "").split(";", 1)[0]
        found["with_cookie"] = _ask(address, port, "/", {"Cookie": cookie})
        found["bearer"] = _ask(address, port, "/data.json",
                               {"Authorization": f"Bearer {token}"})
        found["post"] = _ask(address, port, "/", {"Cookie": cookie}, method="POST")
    finally:
        stop(board)
        found["stderr_after"] = board.stderr.read() if board.stderr else ""
    print(json.dumps(found))


if __name__ == "__main__":
    main()
