"""The backend contract, one suite for every registered scheduler backend (as reframe tests
every scheduler with one suite).

Each backend renders the same specs (a single job, an array, a dependency, a reservation, an
MPI layout, hostile strings), reads its own captured answers (submit, status, accounting,
reservations: tests/data/contract/NAME.yaml names them and what they must parse to), and
spells cancel, hold, release and reservation commands. A new backend is tested by adding its
contract file and samples; a backend without one fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA

from abcitrain.backends import Backend, backend_names, get_backend
from abcitrain.backends.base import Output
from abcitrain.batch.render import JobPlan, plan_job, templates_dir
from abcitrain.batch.spec import parse_spec
from abcitrain.domain import ClusterProfile, JobState
from abcitrain.profiles import load_profile

CONTRACT = DATA / "contract"
SAMPLES = DATA / "samples"
NAMES = backend_names()
HOSTILE = "a'b\"c $(touch /tmp/pwned) `id` ; rm -rf ~ #"


def _contract(name: str) -> dict[str, Any]:
    path = CONTRACT / f"{name}.yaml"
    assert path.is_file(), f"backend {name!r} has no contract file ({path})"
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _sample(path: str) -> str:
    return (SAMPLES / path).read_text()


def _profile(name: str) -> ClusterProfile:
    return load_profile(str(_contract(name)["cluster"]))


def _plan(name: str, **fields: Any) -> JobPlan:
    profile = _profile(name)
    data: dict[str, Any] = {"name": "contract", "cluster": profile.name,
                            "resource": next(iter(profile.resource_types)),
                            "walltime": "1:00:00", "command": ["echo", "hi"]}
    if profile.group_required:
        data["group"] = "gaa50000"
    data.update(fields)
    spec, prof = parse_spec(data)
    return plan_job(spec, prof)


def _owned(backend: Backend, plan: JobPlan) -> set[str]:
    """The fields the plan's directives set, read back with the backend's own table."""
    names = tuple(plan.profile.resource_types)
    return {f for d in plan.directives for f, _ in backend.owned_fields(d, names)}


def _bash_n(script: str) -> None:
    done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def _directives_lead(backend: Backend, script: str) -> None:
    """Every directive line comes before the first command (schedulers stop reading there)."""
    lines = script.splitlines()
    first = next(i for i, ln in enumerate(lines[1:], 1) if ln and not ln.startswith("#"))
    assert not any(ln.startswith(backend.directive_prefix + " ") for ln in lines[first:])


@pytest.mark.parametrize("name", NAMES)
def test_every_backend_has_a_contract_file_and_the_samples_its_methods_need(
        name: str) -> None:
    backend = get_backend(name)
    data = _contract(name)
    assert data.get("submit"), "a submit answer"
    assert data.get("status") or data.get("accounting"), "a status or accounting answer"
    if backend.accounting_argvs(["1"]):
        assert data.get("accounting"), "it asks accounting: an accounting answer"
    if backend.reservations({}) is not None:
        assert (data.get("reservations") or {}).keys() >= {"create", "list"}, \
            "it takes reservations: a create and a list answer"
    for entry in [*data.get("submit", []), *data.get("status", []),
                  *data.get("accounting", [])]:
        assert (SAMPLES / entry["sample"]).is_file(), entry["sample"]


@pytest.mark.parametrize("name", NAMES)
def test_submit_answers_give_the_job_id(name: str) -> None:
    backend = get_backend(name)
    for entry in _contract(name)["submit"]:
        out = Output(_sample(entry["sample"]), "", 0)
        assert backend.parse_submit(out) == str(entry["job_id"]), entry["sample"]


def _expect(got: dict[str, Any], jobs: dict[str, list[Any]], where: str) -> None:
    seen = {job: [got[job].state.value, got[job].exit_code] for job in got}
    assert seen == {str(k): v for k, v in jobs.items()}, where
    assert all(isinstance(st.state, JobState) for st in got.values())


@pytest.mark.parametrize("name", NAMES)
def test_status_and_accounting_answers_parse_to_the_recorded_states(name: str) -> None:
    backend = get_backend(name)
    data = _contract(name)
    for entry in data.get("status") or []:
        ids = [str(j) for j in entry["jobs"]]
        cancelled = frozenset(str(j) for j in entry.get("cancelled", ()))
        got = backend.parse_status(Output(_sample(entry["sample"]), "", 0), ids, cancelled)
        _expect(got, entry["jobs"], entry["sample"])
    for entry in data.get("accounting") or []:
        ids = [str(j) for j in entry["jobs"]]
        cancelled = frozenset(str(j) for j in entry.get("cancelled", ()))
        got = backend.parse_accounting([Output(_sample(entry["sample"]), "", 0)], ids,
                                       cancelled)
        _expect(got, entry["jobs"], entry["sample"])


@pytest.mark.parametrize("name", NAMES)
def test_a_job_the_scheduler_does_not_name_is_left_out(name: str) -> None:
    """Never "done" for a job the answer does not mention (STYLE: missing is not completed)."""
    backend = get_backend(name)
    data = _contract(name)
    for entry in data.get("status") or []:
        got = backend.parse_status(Output(_sample(entry["sample"]), "", 0), ["424242"])
        assert got == {}, entry["sample"]


@pytest.mark.parametrize("name", NAMES)
def test_reservation_answers_parse(name: str) -> None:
    import datetime as dt

    backend = get_backend(name)
    commands = (_profile(name).data.get("reservations") or {})
    reader = backend.reservations({v: commands[v] for v in ("list", "show", "delete")
                                   if commands.get(v)})
    if reader is None:
        assert "reservations" not in _contract(name)
        return
    data = _contract(name)["reservations"]
    created = reader.parse_create(Output(_sample(data["create"]["sample"]), "", 0))
    assert created == str(data["create"]["id"])
    found = reader.parse_list(Output(_sample(data["list"]["sample"]), "", 0), dt.UTC)
    assert len(found) == data["list"]["count"]
    assert all(r.resv_id for r in found)
    # the profile's commands, filled in with an id
    for verb in ("show", "delete"):
        if verb in reader.commands:
            argv = reader.argv(verb, "R42")
            assert "R42" in " ".join(argv) and "{" not in " ".join(argv), argv


CASES: dict[str, dict[str, Any]] = {
    "single": {},
    "array": {"array": "1-10"},
    "dependency": {"depends_on": ["123"], "dependency": "afterany"},
    "mpi": {"nodes": 2, "ranks_per_node": 4, "threads_per_rank": 2},
    "reservation": {},
    "hostile": {"env": {"MSG": HOSTILE}, "command": ["echo", HOSTILE, "$(id)"]},
}
#: Fields each case must make the directives set, as the backend's own table reads them.
OWNED = {"single": {"name", "walltime"}, "array": {"name", "walltime", "array"},
         "dependency": {"name", "walltime", "dependency"}}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", NAMES)
def test_the_shared_specs_render_for_every_backend(name: str, case: str) -> None:
    backend = get_backend(name)
    profile = _profile(name)
    fields = dict(CASES[case])
    if case == "mpi":
        multi = [t for t, rt in profile.resource_types.items() if rt.exclusive]
        limits = profile.resource_types[multi[0]].limits if multi else {}
        if not multi or all((lim.max_nodes or 1) < 2 for lim in limits.values()):
            pytest.skip(f"{profile.name} runs one node only")
        fields["resource"] = multi[0]
    if case == "reservation":
        if "reservation_id" not in _contract(name):
            pytest.skip(f"{profile.name} takes no reservations (its contract names no id)")
        fields["reservation"] = str(_contract(name)["reservation_id"])
    plan = _plan(name, **fields)
    assert plan.errors == [], plan.errors
    _bash_n(plan.script)
    _directives_lead(backend, plan.script)
    assert _owned(backend, plan) >= OWNED.get(case, {"name", "walltime"})
    assert any(backend.walltime_text(3600) in d for d in plan.directives)
    if case == "reservation":
        said = " ".join([*plan.directives, *plan.submit_args])
        assert fields["reservation"] in said
    if case == "mpi":
        assert any("2" in d for d in plan.directives), plan.directives
    if case == "hostile":
        header = [ln for ln in plan.script.splitlines() if ln.startswith("#")]
        assert not any("pwned" in ln for ln in header)
        # the value reaches the job intact: the export line, run by bash, gives it back
        export = next(ln for ln in plan.script.splitlines() if ln.startswith("export MSG="))
        echoed = subprocess.run(["bash", "-c", f'{export}\nprintf %s "$MSG"'],
                                capture_output=True, text=True, check=True).stdout
        assert echoed == HOSTILE
    argv = plan.submit_argv("/tmp/job.sh")
    assert argv[-1] == "/tmp/job.sh" and all(isinstance(a, str) for a in argv)


@pytest.mark.parametrize("name", NAMES)
def test_an_extra_directive_setting_an_owned_field_is_refused_in_every_spelling(
        name: str) -> None:
    """Each backend's table catches its own spellings of the walltime (the one field every
    scheduler has), attached or apart."""
    backend = get_backend(name)
    spellings = [o for o, f in [*backend.options.short.items(), *backend.options.long.items()]
                 if f == "walltime"]
    spellings += [f"{o} {n}=1:00:00" for o, names in backend.options.lists.items()
                  for n, f in names.items() if f == "walltime"]
    assert spellings, "the backend's table names no walltime option"
    for spelled in spellings:
        text = spelled if " " in spelled else f"{spelled} 100"
        plan = _plan(name, extra_directives=[text])
        assert any("walltime" in p.message and p.severity == "error" for p in plan.problems), \
            text


@pytest.mark.parametrize("name", NAMES)
def test_cancel_hold_and_release_argv(name: str) -> None:
    backend = get_backend(name)
    cancel = backend.cancel_argv(["11", "12"])
    assert cancel[-2:] == ["11", "12"] or {"11", "12"} <= set(",".join(cancel).split(","))
    if backend.hold_directive is None:
        with pytest.raises(NotImplementedError):
            backend.release_argv(["11"])
        plan = _plan(name, hold=True)
        assert [p.where for p in plan.errors] == ["hold"]
    else:
        assert "11" in " ".join(backend.release_argv(["11"]))
        assert backend.hold_directive in _plan(name, hold=True).directives


@pytest.mark.parametrize("name", NAMES)
def test_the_template_reads_the_variables_the_backend_declares(name: str) -> None:
    """The job variables a backend declares (detection, requeue, node lists) are the ones its
    template turns into ABCITRAIN_* names."""
    backend = get_backend(name)
    folders = [Path(d) for d in backend.template_dirs] + [templates_dir()]
    template = next(f / backend.template for f in folders if (f / backend.template).is_file())
    text = template.read_text()
    v = backend.variables
    declared = [v.job_id, v.array_index, v.submit_dir, *v.node_files,
                *([v.host_list] if v.host_list else []),
                *([v.local_scratch] if v.local_scratch else [])]
    missing = [var for var in declared if not re.search(rf"\b{var}\b", text)]
    assert missing == [], f"{template.name} never reads {missing}"
    assert backend.runs_job({var: "1" for var in v.detect})
    assert not backend.runs_job({})


@pytest.mark.parametrize("name", NAMES)
def test_explanations_compile_and_default_output_names_the_job(name: str) -> None:
    backend = get_backend(name)
    for pattern, meaning in backend.explanations:
        re.compile(pattern)
        assert meaning
    spec, _ = parse_spec({"name": "t", "cluster": _profile(name).name,
                          "resource": next(iter(_profile(name).resource_types)),
                          "walltime": "0:10:00", "command": ["true"],
                          **({"group": "g"} if _profile(name).group_required else {})})
    assert "{name}" in backend.default_output(spec) and "{job_id}" in \
        backend.default_output(spec)
