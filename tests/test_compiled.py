"""The optional compiled build (``ZKOPS_COMPILE=1``: buildsys/zkops_backend.py and setup.py;
docs/performance.md, "The compiled build").

The default run checks what every install has: the start-up log line says whether the request
path runs compiled, and the backend asks for mypy only when it compiles. The ``slow`` test
(run by ``.ci/run``) builds the compiled wheel as a user would (``ZKOPS_COMPILE=1 python -m
build``: an sdist, and the wheel built from it in a temporary directory, so nothing is compiled
into the checkout), unpacks it, and runs the differential suite against real Apache, the fuzz
suite's kept cases and short seeds, the core server suites, the write path's (the digests, the
txn codec and log, the path rules, the metrics port) and the ensemble suites (ZAB's rules,
the quorum wire, zkops ensembles and ensembles with Apache 3.8 members, reconfig) against it in
a child pytest whose ``zkops`` is the unpacked wheel; there, the ``ZKOPS_COMPILED_TREE`` tests
below check that the compiled modules are the ones imported.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import zipfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.ourzk import ZkopsProcess
from zkops.server import compiled

ROOT = Path(__file__).resolve().parent.parent
TREE_ENV = "ZKOPS_COMPILED_TREE"  # set in the child pytest: the unpacked compiled wheel it runs
IN_TREE = os.environ.get(TREE_ENV)

# what the child pytest runs against the compiled build (tests/test_compiled.py's checks first)
SUITES = [
    "tests/test_compiled.py::test_this_run_imports_the_request_path_it_should",
    "tests/test_compiled.py::test_a_server_logs_whether_its_request_path_is_compiled",
    "tests/test_compiled.py::test_a_standalone_request_runs_compiled_modules_and_pure_ones_on_purpose",
    "tests/test_differential.py",
    "tests/test_fuzz_differential.py::test_kept_cases_answer_as_apache",
    "tests/test_fuzz_differential.py::test_short_seeded_run_answers_as_apache",
    "tests/test_fuzz_differential.py::test_standalone_reconfig_answers_as_apache",
    "tests/test_seams.py",
    "tests/test_connection_replies.py",
    "tests/test_protocol_raw.py",
    "tests/test_setdata_fast_path.py",
    "tests/test_sessions_and_expiry.py",
    "tests/test_multicodec.py",
    "tests/test_quota.py",
    "tests/test_sasl.py",
    "tests/test_reserved_paths.py",
    "tests/test_fourletterwords.py",
    "tests/test_mntr.py",
    "tests/test_eventloop.py",
    "tests/test_benchmarks_cpu_startup.py",
    "tests/test_null_fields.py",
    # the data tree (compiled; its znodes, znode.py, stay pure Python)
    "tests/test_datatree.py",
    "tests/test_datatree_compact.py",
    "tests/test_digest.py",
    "tests/test_namespace_counts.py",
    "tests/test_snapshot.py",
    "tests/test_snapshot_digest.py",
    "tests/test_snapshot_fuzzy_acl.py",
    "tests/test_snapshot_child.py",
    # what a write also runs (digest, txncodec, txnlog, metrics, stats, paths, quota): the txn
    # codec, the txn log's format and recovery, the path rules, the metrics port, and the digests
    # a zkops leader sends checked by Apache followers (not test_storage.py: its group committer
    # tests stand a SimpleNamespace in for the compiled ZooKeeperServer)
    "tests/test_txncodec.py",
    "tests/test_txnlog.py",
    "tests/test_paths.py",
    "tests/test_admin_metrics.py",
    "tests/test_digest_ensemble.py",
    # an ensemble's write path (zab, quorumpeer, quorum, quorumnet, quorumwire): the cores, the
    # quorum wire's codecs, zkops ensembles, and ensembles with Apache 3.8 members
    "tests/test_zab_records.py",
    "tests/test_zab_rules.py",
    "tests/test_peer_codecs.py",
    "tests/test_ensemble.py",
    "tests/test_leader_quorum_loss.py",
    "tests/test_mixed_ensemble.py",
    "tests/test_reconfig.py",
]


def _backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zkops_backend_under_test", ROOT / "buildsys" / "zkops_backend.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _request_path_line(server: ZkopsProcess) -> str:
    deadline = time.monotonic() + 60
    while "request path:" not in (text := server.log_tail(1_000_000)):
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)
    return next(line for line in text.splitlines() if "request path:" in line)


def test_a_server_logs_whether_its_request_path_is_compiled(tmp_path: Path) -> None:
    from tests.support.rawclient import four_letter

    server = ZkopsProcess(workdir=tmp_path).start()
    try:
        assert four_letter(server.address, "ruok") == "imok"
        line = _request_path_line(server)
        assert server.proc is not None
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text().split()
        mapped = {Path(f).name.split(".")[0] for f in maps if f.endswith(".so")}
    finally:
        server.cleanup()
    assert "event loop: " in line, line  # the line that names the loop says it too
    if IN_TREE:
        assert line.endswith(f"request path: compiled (mypyc: {len(compiled.MODULES)} of "
                             f"{len(compiled.MODULES)} modules)"), line
        # a standalone server maps the library of its own group, not the ensemble's code
        assert "fast__mypyc" in mapped and "fast_ensemble__mypyc" not in mapped, sorted(mapped)
    else:
        assert line.endswith("request path: pure Python"), line
        assert compiled.compiled_modules() == [] and compiled.describe() == "pure Python"


def test_mypy_is_a_build_requirement_only_when_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _backend()
    seen: list[str | None] = []
    monkeypatch.setattr(backend._setuptools, "get_requires_for_build_wheel", lambda settings=None: ["wheel-x"])
    monkeypatch.setattr(backend._setuptools, "get_requires_for_build_editable", lambda settings=None: [])
    monkeypatch.setattr(backend._setuptools, "build_wheel",
                        lambda *a: seen.append(os.environ.get(backend.BUILDING)) or "zkops.whl")
    monkeypatch.setattr(backend._setuptools, "build_editable",
                        lambda *a: seen.append(os.environ.get(backend.BUILDING)) or "zkops-editable.whl")
    for value in (None, "", "0"):
        if value is None:
            monkeypatch.delenv("ZKOPS_COMPILE", raising=False)
        else:
            monkeypatch.setenv("ZKOPS_COMPILE", value)
        assert backend.get_requires_for_build_wheel() == ["wheel-x"]
        assert backend.build_wheel("dist") == "zkops.whl"
    monkeypatch.setenv("ZKOPS_COMPILE", "1")
    assert backend.get_requires_for_build_wheel() == ["wheel-x", backend.MYPY]
    assert backend.get_requires_for_build_editable() == []
    assert backend.build_wheel("dist") == "zkops.whl"
    assert backend.build_editable("dist") == "zkops-editable.whl"
    # setup.py compiles only inside a compiling build_wheel, never in an editable install
    assert seen == [None, None, None, "1", None]
    assert os.environ.get(backend.BUILDING) is None


def test_this_run_imports_the_request_path_it_should() -> None:
    """In the compiled build's child pytest, every module of the request path comes from the
    unpacked wheel's extension modules; in any other run (an editable install, a pure wheel),
    none does and the log line says pure Python."""
    import zkops

    if not IN_TREE:
        assert compiled.compiled_modules() == []
        assert compiled.describe() == "pure Python"
        for name in compiled.MODULES:
            assert str(importlib.import_module(f"zkops.server.{name}").__file__).endswith(".py"), name
        return
    tree = Path(str(IN_TREE)).resolve()
    assert Path(zkops.__file__).resolve().is_relative_to(tree), zkops.__file__
    for name in compiled.MODULES:
        module = importlib.import_module(f"zkops.server.{name}")
        where = Path(str(module.__file__)).resolve()
        assert where.is_relative_to(tree) and where.name.endswith(tuple(EXTENSION_SUFFIXES)), where
    assert compiled.compiled_modules() == list(compiled.MODULES)
    assert compiled.describe() == f"compiled (mypyc: {len(compiled.MODULES)} of {len(compiled.MODULES)} modules)"
    for group, _names in compiled.GROUPS:
        assert list((tree / "zkops" / "server").glob(f"{group}__mypyc.*")), f"the {group} group's library"
    assert set(compiled.MODULES) == {n for _group, names in compiled.GROUPS for n in names}


# The modules of zkops.server whose Python code a standalone server's event loop may run for a
# request in the compiled build; everything else a request passes through is compiled
# (compiled.MODULES). znode stays pure: its classes are used as ordinary Python classes
# (docs/performance.md, "The compiled build"). The jute records' codecs, generated at their first use, run as code of
# no module and are not counted.
PURE_ON_A_REQUEST = {"znode"}


def _modules_a_request_runs(tmp_path: Path) -> set[str]:
    """The zkops.server modules whose Python functions an in-process standalone server (with a
    txn log) runs on its event loop's thread for creates, sets, gets and deletes, once each kind
    has run once (so first-use work, such as a record's codec being generated, is left out)."""
    import asyncio

    from benchmarks import cpu
    from tests.support.ourzk import memory_config
    from zkops.server.connection import ClientConnection
    from zkops.server.records import ConnectRequest, PathRequest, RequestHeader
    from zkops.server.txnlog import TxnLog
    from zkops.server.zkserver import ZooKeeperServer

    seen: set[str] = set()

    def profile(frame: object, event: str, arg: object) -> None:
        name = getattr(frame, "f_globals", {}).get("__name__") or ""
        if event == "call" and name.startswith("zkops.server."):
            seen.add(name.removeprefix("zkops.server."))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        wrote = asyncio.Event()
        txnlog = TxnLog(tmp_path / "log", force_sync=False)
        server = ZooKeeperServer(memory_config(0, client_port=0, force_sync=False), txnlog=txnlog, loop=loop)
        conn = ClientConnection(server)
        sink = cpu.SinkTransport(wrote)
        conn.connection_made(sink)
        conn.data_received(cpu._frame(ConnectRequest(0, 0, 30000, 0, b"\0" * 16).to_bytes() + b"\0"))

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            await cpu._settle(server, 0, wrote)

        def delete(xid: int, path: str) -> bytes:
            return cpu._frame(RequestHeader(xid, 2).to_bytes() + PathRequest(path, False).to_bytes()[:-1]
                              + b"\xff\xff\xff\xff")  # DeleteRequest: path, version -1

        try:
            await settle()
            assert conn.connected
            cpu._setup_bench(conn)
            await settle()
            # the requests' bytes are made before any is watched: the client's work is not the server's
            batches = [b"".join([cpu._request("create", xid, "t"), cpu._request("set", xid + 1, "t"),
                                 cpu._request("get", xid + 2, "t"), delete(xid + 3, f"/bench/t-{xid}")])
                       for xid in range(10, 50, 4)]
            for i, batch in enumerate(batches):  # the first batch warms up; the others are watched
                sys.setprofile(profile if i else None)
                try:
                    conn.data_received(batch)
                    await settle()
                finally:
                    sys.setprofile(None)
            assert sink.written > 0
            assert not server.pending and not sink.closed
        finally:
            await server.stop()
            txnlog.close()

    asyncio.run(run())
    return seen


def test_a_standalone_request_runs_compiled_modules_and_pure_ones_on_purpose(tmp_path: Path) -> None:
    """What a standalone create, set, get and delete run on the event loop's thread: modules of
    compiled.MODULES and those PURE_ON_A_REQUEST names; in the compiled build's child pytest,
    none of compiled.MODULES runs as Python code."""
    seen = _modules_a_request_runs(tmp_path)
    assert seen - set(compiled.MODULES) <= PURE_ON_A_REQUEST, sorted(seen - set(compiled.MODULES))
    if IN_TREE:
        assert not seen & set(compiled.MODULES), sorted(seen & set(compiled.MODULES))
    else:
        assert {"zkserver", "datatree", "digest", "txncodec", "txnlog"} <= seen, sorted(seen)


def _sos() -> set[Path]:
    return {p for d in ("server", "zkops", "provision", "labs", "templates", "tests", "benchmarks")
            for p in (ROOT / d).rglob("*") if p.suffix in (".so", ".pyd")}


@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.timeout(7200)
@pytest.mark.skipif(sys.version_info < (3, 11), reason="the child pytest keeps the checkout off sys.path[0] (-P)")
def test_the_compiled_build_answers_as_the_pure_one(tmp_path: Path) -> None:
    before = _sos()
    env = {**os.environ, "ZKOPS_COMPILE": "1"}
    env.pop(TREE_ENV, None)
    # as a user builds it: the sdist, then the wheel from the sdist (in a temporary directory of
    # build's own, with mypy installed there by the backend's request); minutes on a loaded machine
    done = subprocess.run([sys.executable, "-m", "build", "-o", str(tmp_path / "dist"), str(ROOT)], env=env,
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert _sos() == before, "the compiled build left extension modules in the checkout"
    [wheel] = (tmp_path / "dist").glob("zkops-*.whl")
    assert not wheel.name.endswith("-py3-none-any.whl"), wheel.name  # a platform wheel
    tree = tmp_path / "tree"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for name in compiled.MODULES:
            assert any(n.startswith(f"zkops/server/{name}.") and n.endswith(".so") for n in names), name
        # the .py sources ride along unchanged: the fallback, and what tracebacks show
        for py in sorted((ROOT / "server").glob("*.py")):
            assert z.read(f"zkops/server/{py.name}") == py.read_bytes(), py.name
        z.extractall(tree)
    # the compiled modules need nothing outside the standard library: no site-packages at all
    bare = subprocess.run([sys.executable, "-S", "-c",
                           "from zkops.server import compiled, zkserver, connection; "
                           "print(','.join(compiled.compiled_modules()))"],
                          env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tree)}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.strip() == ",".join(compiled.MODULES)
    # the suites, with the unpacked wheel as zkops: -P and --import-mode=append keep the
    # checkout (with its own zkops/ folder) off the front of sys.path; it comes after the tree
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)]), "PYTHONSAFEPATH": "1",
                 TREE_ENV: str(tree)}
    child_env.pop("ZKOPS_COMPILE", None)
    run = subprocess.run([sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--import-mode=append", "-o", "addopts=-rs --strict-markers", *SUITES],
                         env=child_env, cwd=ROOT, capture_output=True, text=True, timeout=5400)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED") and "test_compiled.py" in line]
    assert not skipped, skipped  # the checks that the compiled modules ran did run
