"""Every command's outputs through one writer (spikeport.outputs): bad places refused before any work in one
line naming the option and the path, the --force rule, staging renamed into place, stale staging of a dead
process removed (a live one's kept), and runs killed at any moment leaving the old output or the new one."""
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli

from spikeport import outputs
from spikeport.errors import SpikeportError
from spikeport.outputs import Output, clean_stale, staging_entries


def cli(capsys, *args):
    """spikeport's main() in this process (the checks run before any heavy work): (status, stdout, stderr)."""
    from spikeport.cli import main

    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def tree(root: Path) -> list:
    """Every entry under ``root`` with its type, size and mtime: what 'nothing was written' compares."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            st = os.lstat(os.path.join(dirpath, name))
            found.append((os.path.relpath(os.path.join(dirpath, name), root), stat.S_IFMT(st.st_mode), st.st_size,
                          st.st_mtime_ns))
    return sorted(found)


def hidden(directory: Path) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def model_and_net(tmp_path_factory):
    """A 1-epoch MLP on digits and its network, as train and convert write them."""
    import spikeport
    from spikeport.ir import save_network
    from spikeport.models import save_model, train

    d = tmp_path_factory.mktemp("inputs")
    model = train(spikeport.load_dataset("digits"), arch="mlp", method="relu", epochs=1, seed=0, validation=0)
    save_model(model, d / "m.pt")
    save_network(spikeport.convert(model), d / "n.spk")
    return d / "m.pt", d / "n.spk"


# ----------------------------------------------------------------------------- bad places, every command

FILE_OPTIONS = {  # command line with {p} where the output goes; the option that names it
    "train --out": (["train", "--epochs", "1", "--out", "{p}"], "--out"),
    "train --checkpoint": (["train", "--epochs", "1", "--out", "m.pt", "--checkpoint", "{p}"], "--checkpoint"),
    "convert --out": (["convert", "{model}", "--out", "{p}"], "--out"),
    "simulate --json": (["simulate", "{net}", "--json", "{p}"], "--json"),
    "simulate --html": (["simulate", "{net}", "--html", "{p}"], "--html"),
    "validate --json": (["validate", "{net}", "--json", "{p}"], "--json"),
    "validate --html": (["validate", "{net}", "--html", "{p}"], "--html"),
    "export --out": (["export", "{net}", "--to", "nir", "--out", "{p}"], "--out"),
    "power --json": (["power", "{net}", "--json", "{p}"], "--json"),
    "power --html": (["power", "{net}", "--html", "{p}"], "--html"),
    "fit-nsp --json": (["fit-nsp", "--json", "{p}"], "--json"),
    "methods --json": (["methods", "--json", "{p}"], "--json"),
}
DIR_OPTIONS = {
    "deploy --out": (["deploy", "{net}", "--target", "loihi", "--out", "{p}"], "--out"),
    "demo --out": (["demo", "--out", "{p}"], "--out"),
}
BAD = {  # name: (path, what the line says for a FILE option, for a DIR option)
    "proc": ("/proc/spikeport-test/out", "/proc is not a file system for outputs", "/proc is not a file system"),
    "sys": ("/sys/spikeport-test", "/sys is not a file system for outputs", "/sys is not a file system"),
    "dev": ("/dev/spikeport-test", "/dev is not a file system for outputs", "/dev is not a file system"),
    "dot": (".", "is a directory", "is the working directory"),
    "other type": ("{other}", "is a directory", "exists and is not a directory"),
    "fifo": ("fifo", "not a regular file (a FIFO)", "exists and is not a directory"),
    "symlink": ("link", "is a symbolic link", "is a symbolic link"),
    "long name": ("n" * 256, "over the limit of 255 bytes (NAME_MAX)", "(NAME_MAX)"),
    "long path": ("d/" * 2100 + "x", "(PATH_MAX", "(PATH_MAX"),
    "no parent": ("nowhere/x", "directory nowhere does not exist", "directory nowhere does not exist"),
    "parent a file": ("afile/x", "afile is not a directory", "afile is not a directory"),
    "trailing slash": ("new/", "ends with a slash", None),
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("command", list(FILE_OPTIONS) + list(DIR_OPTIONS))
def test_a_bad_output_is_one_line_exit_2_and_nothing_is_written(model_and_net, tmp_path, monkeypatch, capsys, command,
                                                                 bad):
    argv, option = (FILE_OPTIONS | DIR_OPTIONS)[command]
    directory = command in DIR_OPTIONS
    path, says_file, says_dir = BAD[bad]
    says = says_dir if directory else says_file
    if says is None:
        pytest.skip("a DIR may be named with a trailing slash")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "keep").write_text("mine")
    (tmp_path / "afile").write_text("mine")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("adir" if directory else "afile")
    path = path.format(other="afile" if directory else "adir")
    before = tree(tmp_path)
    args = [a.format(p=path, model=model_and_net[0], net="n.spk") for a in argv]  # convert reads MODEL first
    rc, out, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"error: {option} "), err
    assert says in lines[0], lines[0]
    assert (path if len(path) <= 200 else path[:90]) in lines[0]
    assert tree(tmp_path) == before, "something was written"


def test_the_console_script_gives_one_line_for_bad_outputs_and_seeds(model_and_net, tmp_path):
    for args, says in ((["train", "--seed", str(2**70), "--out", "m.pt"], "--seed"),
                       (["train", "--seed", "-1", "--out", "m.pt"], "--seed"),
                       (["simulate", "n.spk", "--json", "."], "--json .: is a directory"),
                       (["convert", model_and_net[0], "--out", "/proc/n.spk"], "--out /proc/n.spk: cannot write there")):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_two_options_naming_one_file_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, "simulate", "n.spk", "--json", "r", "--html", "./r")
    assert rc == 2 and "--json r and --html ./r: the same path" in err


# ----------------------------------------------------------------------------- the --force rule

def test_force_replaces_only_an_earlier_output_of_the_same_kind(model_and_net, tmp_path, capsys):
    from spikeport.ir import load_network

    model, _ = model_and_net
    net = tmp_path / "n.spk"
    assert cli(capsys, "convert", model, "--out", net, "--quiet")[0] == 0
    first = net.stat().st_mtime_ns
    rc, _, err = cli(capsys, "convert", model, "--out", net, "--quiet")
    assert rc == 2 and f"--out {net}: exists (give --force to replace it)" in err and net.stat().st_mtime_ns == first
    assert cli(capsys, "convert", model, "--out", net, "--force", "--quiet")[0] == 0
    assert net.stat().st_mtime_ns != first and load_network(net).populations
    # not a graph file: refused with --force too, and left as it was
    for other, kind in ((tmp_path / "notes.txt", "a spikeport graph file"), (model, "a spikeport graph file")):
        if other != model:
            other.write_text("mine")
        data = other.read_bytes()
        rc, _, err = cli(capsys, "convert", model, "--out", other, "--force", "--quiet")
        assert rc == 2 and f"exists and is not {kind}; --force replaces only an earlier output" in err, err
        assert other.read_bytes() == data
    # an empty file holds nothing: written without --force (mktemp's file)
    empty = tmp_path / "empty.spk"
    empty.touch()
    assert cli(capsys, "convert", model, "--out", empty, "--quiet")[0] == 0 and load_network(empty).populations
    assert hidden(tmp_path) == []


def test_reports_follow_the_same_rule(model_and_net, tmp_path, capsys):
    _, net = model_and_net
    report = tmp_path / "s.json"
    args = ["simulate", net, "--steps", "4", "--samples", "5", "--quiet", "--json", report]
    assert cli(capsys, *args)[0] == 0 and json.loads(report.read_text())["steps"] == 4
    rc, _, err = cli(capsys, *args)
    assert rc == 2 and "exists (give --force to replace it)" in err
    assert cli(capsys, *args, "--force")[0] == 0
    page = tmp_path / "page.html"
    page.write_text("my notes\n")
    rc, _, err = cli(capsys, "simulate", net, "--steps", "4", "--samples", "5", "--html", page, "--force")
    assert rc == 2 and "is not an HTML page" in err and page.read_text() == "my notes\n"


def test_train_refuses_an_existing_model_or_checkpoint_before_training(tmp_path, capsys):
    (tmp_path / "m.pt").write_text("x")
    t0 = time.perf_counter()
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "m.pt")
    assert rc == 2 and "--out" in err and "exists (give --force" in err
    (tmp_path / "m.pt").unlink()
    (tmp_path / "m.pt.ckpt").write_text("x")
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "m.pt")
    assert rc == 2 and "--checkpoint" in err and "or --resume to continue from it" in err
    rc, _, err = cli(capsys, "train", "--out", tmp_path / "m.pt", "--force")
    assert rc == 2 and "is not a spikeport checkpoint" in err
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "m.pt").exists()


# ----------------------------------------------------------------------------- staging

def test_a_failed_write_leaves_the_old_file_and_no_staging(tmp_path):
    target = tmp_path / "r.json"
    target.write_text('{"old": 1}\n')

    def broken(f):
        f.write(b'{"new"')
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        Output(target, "--json", "json", force=True).write(broken)
    assert target.read_text() == '{"old": 1}\n' and hidden(tmp_path) == []

    def full(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(SpikeportError, match=r"--json .*r.json: cannot write it \(No space left on device\); "
                                             r"nothing was written"):
        Output(target, "--json", "json", force=True).write(full)
    assert target.read_text() == '{"old": 1}\n' and hidden(tmp_path) == []


def test_files_and_dirs_get_the_users_permissions_and_long_names_stage(tmp_path):
    mask = os.umask(0o027)
    try:
        f = Output(tmp_path / "r.json", "--json", "json").write_json({"a": 1})
        with Output(tmp_path / "D", "--out", "directory").staged() as d:
            (d / "x").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(f.stat().st_mode) == 0o640 and stat.S_IMODE((tmp_path / "D").stat().st_mode) == 0o750
    long = tmp_path / ("L" * 255)
    Output(long, "--out").write_text("fits")
    assert long.read_text() == "fits" and hidden(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False])
def test_a_dir_is_replaced_whole(tmp_path, monkeypatch, exchange):
    if not exchange:  # a system without RENAME_EXCHANGE: the old DIR moved aside, then the new one in
        monkeypatch.setattr(outputs, "exchange_entries", lambda a, b: False)
    target = tmp_path / "dep"
    target.mkdir()
    (target / "manifest.json").write_text(json.dumps({"spikeport": "0", "target": "loihi"}))
    (target / "old-only").write_text("old")
    with pytest.raises(SpikeportError, match="not empty"):
        Output(target, "--out", "deploy").check()
    with Output(target, "--out", "deploy", force=True).staged() as d:
        (d / "manifest.json").write_text(json.dumps({"spikeport": "1", "target": "loihi"}))
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json"] and hidden(tmp_path) == []
    assert json.loads((target / "manifest.json").read_text())["spikeport"] == "1"


# ----------------------------------------------------------------------------- stale staging

def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def fake_staging(target: Path, pid: int, start: int, what: str = "tmp", directory: bool = True) -> Path:
    entry = target.parent / f".{target.name}.{pid}-{start}-0.{what}"
    if directory:
        entry.mkdir()
        (entry / target.name).write_bytes(b"half a fi")
    else:
        entry.write_bytes(b"half a fi")
    return entry


def test_stale_staging_of_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    target = tmp_path / "n.spk"
    dead = dead_pid()
    stale = [fake_staging(target, dead, 0), fake_staging(target, dead, 12345, directory=False)]
    me = fake_staging(target, os.getpid(), outputs.staging.own_start())           # this (live) process
    reused = fake_staging(target, os.getpid(), outputs.staging.own_start() + 1)   # its pid, another start: reused
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        other = fake_staging(target, sleeper.pid, outputs.staging.start_time(sleeper.pid))
        unrelated = tmp_path / f".other.{dead}-0-0.tmp"
        unrelated.mkdir()
        Output(target, "--out", "graph").check()
        assert not any(p.exists() for p in stale + [reused])
        assert me.exists() and other.exists() and unrelated.exists()
        sleeper.kill()
        sleeper.wait()
        assert other in clean_stale(target) and not other.exists() and me.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [p for p, *_ in staging_entries(target)] == [me]


def test_a_dir_moved_aside_by_a_killed_run_is_put_back(tmp_path):
    target = tmp_path / "dep"
    old = fake_staging(target, dead_pid(), 0, "old")
    assert clean_stale(target) and target.is_dir() and not old.exists()    # DIR missing: the old one back
    old = fake_staging(target, dead_pid(), 0, "old")
    assert clean_stale(target) == [old] and not old.exists() and (target / "dep").exists()  # DIR there


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see open files")
def test_an_older_versions_staging_file_is_removed_once_nobody_has_it_open(tmp_path):
    target = tmp_path / "m.pt.ckpt"
    legacy, busy = tmp_path / ".m.pt.ckpt.abcd_123.tmp", tmp_path / ".m.pt.ckpt.zz99zz99.tmp"
    for p in (legacy, busy):
        p.write_bytes(b"partial")
        os.utime(p, (time.time() - 60, time.time() - 60))
    with open(busy, "rb"):  # a live writer holds it
        clean_stale(target)
        assert not legacy.exists() and busy.exists()
    clean_stale(target)
    assert not busy.exists()


def test_the_next_command_removes_a_dead_runs_staging(model_and_net, tmp_path, capsys):
    model, _ = model_and_net
    target = tmp_path / "n.spk"
    stale = fake_staging(target, dead_pid(), 0)
    live = fake_staging(target, os.getpid(), outputs.staging.own_start())
    assert cli(capsys, "convert", model, "--out", target, "--quiet")[0] == 0
    assert not stale.exists() and live.exists()


# ----------------------------------------------------------------------------- bounds and progress

def test_runs_are_bounded_before_they_start(model_and_net, monkeypatch, capsys):
    import spikeport
    from spikeport import budget
    from spikeport.deploy import pipeline
    from spikeport.ir import load_network

    net = load_network(model_and_net[1])
    for call in (lambda: spikeport.simulate(net, "digits", 10**9), lambda: spikeport.validate(net, "digits", 10**9),
                 lambda: pipeline.deploy(net, "loihi", steps=10**9), lambda: pipeline.power(net, ["loihi"], steps=10**9)):
        with pytest.raises(SpikeportError, match=r"^--steps 1000000000 exceeds the limit 1,000,000 steps$"):
            call()
    rc, _, err = cli(capsys, "simulate", model_and_net[1], "--steps", "1000000000")
    assert rc == 2 and err == "error: --steps 1000000000 exceeds the limit 1,000,000 steps\n"
    monkeypatch.setattr(budget, "MAX_WORK", 10**6)
    with pytest.raises(SpikeportError, match=r"--steps 100 x 359 samples x 458 neurons = 1.64e\+07 neuron updates "
                                             r"exceeds the limit 1e\+06"):
        spikeport.simulate(net, "digits", 100)


def test_a_long_step_keeps_the_progress_alive(monkeypatch):
    import io

    from spikeport import progress
    from spikeport.cli.common import _Bar

    monkeypatch.setattr(progress, "LINE_DELAY_S", 0.3)
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 1.0)
    stream = io.StringIO()
    with _Bar(progress.Progress(10, "simulate", stream=stream)) as bar:
        bar.set_total(359)
        time.sleep(3.5)  # one batch that reports nothing
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("simulate: 0/359")]
    assert len(lines) >= 2 and "elapsed" in lines[0], stream.getvalue()


# ----------------------------------------------------------------------------- killed runs

WRAPPER = r"""
import contextlib, os, sys, time
from pathlib import Path
import spikeport.outputs as o

target = os.path.abspath(os.environ["SPIKEPORT_TEST_TARGET"])
pause, marker = os.environ.get("SPIKEPORT_TEST_PAUSE", ""), os.environ["SPIKEPORT_TEST_MARKER"]
staged = o.Output.staged

@contextlib.contextmanager
def paused(self):
    with staged(self) as tmp:
        yield tmp
        if pause and str(self.target) == target:  # complete, not yet renamed: stop here
            if pause == "mid-write":  # or as a write cut short: half the bytes of half the files
                files = [tmp] if tmp.is_file() else sorted(p for p in tmp.rglob("*") if p.is_file())
                for f in files[: max(1, len(files) // 2)]:
                    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
            Path(marker).touch()
            time.sleep(300)

o.Output.staged = paused
from spikeport.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_and_kill(tmp_path, args, target, pause=None, after=None):
    """Run spikeport ``args`` in ``tmp_path/w``; SIGKILL it once its staging of ``target`` is paused
    (``pause``: "before-rename" or "mid-write") or ``after`` seconds. Returns True if it was killed while
    its staging was there (paused), False if killed at another moment or finished."""
    marker = tmp_path / "paused"
    env = {**os.environ, "SPIKEPORT_TEST_TARGET": str(target), "SPIKEPORT_TEST_PAUSE": pause or "",
           "SPIKEPORT_TEST_MARKER": str(marker)}
    with open(tmp_path / "log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *map(str, args), "--quiet"], cwd=tmp_path / "w",
                                env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + (after if after is not None else 300)
        while time.monotonic() < deadline and proc.poll() is None and not marker.exists():
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode in (0, -signal.SIGKILL), (tmp_path / "log").read_text()
    if marker.exists():
        assert staging_entries(target), "killed while staging, yet no staging entry"
        return True
    return False


def same_or_valid(target: Path, old, valid) -> None:
    """After a kill: the old output, or a complete new one; never a partial one."""
    if old is None:
        assert not target.exists() or valid(target)
    elif target.is_dir():
        assert (sorted(p.name for p in target.iterdir()) == old[0] and (target / "manifest.json").read_bytes() ==
                old[1]) or valid(target)
    else:
        assert target.read_bytes() == old or valid(target)


def graph_ok(path):
    from spikeport.ir import load_network
    return bool(load_network(path).populations)


def model_ok(path):
    from spikeport.models import load_model
    return load_model(path).spec is not None


def deploy_ok(path):
    from spikeport.ir import load_network
    m = json.loads((path / "manifest.json").read_text())
    return all((path / a).is_file() for a in m["artifacts"]) and bool(load_network(path / "network.spk").populations)


def json_ok(path):
    return "targets" in json.loads(path.read_text())


@pytest.mark.parametrize("pause, after", [("mid-write", None), ("before-rename", None), (None, 0.5), (None, 2.0)])
def test_a_killed_convert_leaves_the_old_graph_or_the_new_one(model_and_net, tmp_path, capsys, pause, after):
    model, _ = model_and_net
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "n.spk"
    assert cli(capsys, "convert", model, "--out", target, "--v-init", "zero", "--quiet")[0] == 0
    old = target.read_bytes()
    paused = run_and_kill(tmp_path, ["convert", model, "--out", target, "--force"], target, pause, after)
    assert paused or not pause
    same_or_valid(target, old, graph_ok)
    if paused:
        assert target.read_bytes() == old
    assert cli(capsys, "convert", model, "--out", target, "--force", "--quiet")[0] == 0
    assert graph_ok(target) and target.read_bytes() != old and hidden(tmp_path / "w") == []


@pytest.mark.parametrize("pause, earlier", [("before-rename", True), ("mid-write", False)])
def test_a_killed_deploy_leaves_the_old_dir_or_the_new_one(model_and_net, tmp_path, capsys, pause, earlier):
    _, net = model_and_net
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "dep"
    run = ["deploy", net, "--target", "loihi", "--samples", "5", "--steps", "8", "--out", target]
    old = None
    if earlier:
        assert cli(capsys, *run, "--seed", "1", "--quiet")[0] == 0
        old = (sorted(p.name for p in target.iterdir()), (target / "manifest.json").read_bytes())
    paused = run_and_kill(tmp_path, run + ["--force"], target, pause)
    assert paused
    same_or_valid(target, old, deploy_ok)
    if paused:
        assert (target / "manifest.json").read_bytes() == old[1] if earlier else not target.exists()
    assert cli(capsys, *run, "--force", "--quiet")[0] == 0
    assert deploy_ok(target) and hidden(tmp_path / "w") == []


@pytest.mark.parametrize("pause, after", [("mid-write", None), (None, 2.5)])
def test_a_killed_train_leaves_no_model_or_a_whole_one(tmp_path, capsys, pause, after):
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "m.pt"
    run = ["train", "--dataset", "digits", "--arch", "mlp", "--epochs", "1", "--validation", "0", "--out", target]
    paused = run_and_kill(tmp_path, run, target, pause, after)
    assert paused or not pause
    same_or_valid(target, None, model_ok)
    if paused:
        assert not target.exists()
    time.sleep(1.1)  # a checkpoint cut short is an older writer's file: removed once a second idle and closed
    assert cli(capsys, *run, "--force", "--quiet")[0] == 0
    assert model_ok(target) and hidden(tmp_path / "w") == []


@pytest.mark.parametrize("pause, after", [("mid-write", None), (None, 2.0)])
def test_a_killed_power_leaves_no_report_or_a_whole_one(model_and_net, tmp_path, capsys, pause, after):
    _, net = model_and_net
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "p.json"
    run = ["power", net, "--target", "loihi", "--samples", "5", "--steps", "8", "--json", target]
    paused = run_and_kill(tmp_path, run, target, pause, after)
    assert paused or not pause
    same_or_valid(target, None, json_ok)
    if paused:
        assert not target.exists()
    assert cli(capsys, *run, "--force", "--quiet")[0] == 0
    assert json_ok(target) and hidden(tmp_path / "w") == []


def test_the_demo_replaces_its_own_default_dir_and_follows_force_elsewhere(tmp_path, monkeypatch, capsys):
    from spikeport.cli import deployment

    def quick(out, shown):  # the demo's files, without the minutes of the demo
        for name in ("model.pt", "net.spk", "power.json"):
            (out / name).write_text(name)

    monkeypatch.setattr(deployment, "demo_into", quick)
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "demo")[0] == 0 and (tmp_path / "out" / "demo" / "net.spk").is_file()
    assert cli(capsys, "demo")[0] == 0  # out/demo is the demo's own place: replaced
    (tmp_path / "out" / "demo" / "thesis.txt").write_text("mine")
    rc, _, err = cli(capsys, "demo")
    assert rc == 2 and "out/demo: exists and is not an earlier demo's directory" in err
    assert (tmp_path / "out" / "demo" / "thesis.txt").read_text() == "mine"
    assert cli(capsys, "demo", "--out", "d")[0] == 0
    rc, _, err = cli(capsys, "demo", "--out", "d")
    assert rc == 2 and "--out d: directory exists and is not empty" in err
    assert cli(capsys, "demo", "--out", "d", "--force")[0] == 0
    assert hidden(tmp_path) == [] and hidden(tmp_path / "out") == []
