"""A rank that finished leaves without the interpreter's teardown (abcitrain.train.ending),
yet loses nothing the teardown would have written: buffered stdout and stderr, logging
handlers. Its exit status is the one it was given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import atexit, logging, sys
from abcitrain.train.ending import end_process

logging.basicConfig(filename=sys.argv[1], level=logging.INFO)
atexit.register(lambda: print("teardown ran", flush=True))
print("abcitrain: finished at step 6 of 6")          # a pipe: block-buffered, unflushed
sys.stderr.write("a last warning")                    # no newline, unflushed
logging.getLogger("kit").info("saved the final checkpoint")
end_process(7)
print("never")
"""


def test_a_finished_rank_ends_with_its_status_and_flushes_what_it_wrote(tmp_path: Path) -> None:
    log = tmp_path / "kit.log"
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(log)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 7, done
    assert done.stdout == "abcitrain: finished at step 6 of 6\n"   # no teardown, no "never"
    assert done.stderr == "a last warning"
    assert "saved the final checkpoint" in log.read_text()

