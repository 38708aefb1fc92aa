"""Fuzz the command line with bad input: no traceback, no hang, no runaway memory, no
invalid JSON (issue 18).

Generates N seeded inputs - mutated scenario files, ``--set`` overrides with special
numbers, mutated calibration profiles, measured-runs CSVs and sweep files, unwritable
output paths and special files - and runs ``clustersim`` on each in a forked child of
this process (the simulator is imported once), with a wall-clock limit and an address
space limit. Prints the counts:

* ``ok`` (exit 0) and ``refused`` (exit 2 with one ``error:`` line);
* ``traceback`` (a traceback printed, or an exit code other than 0, 1 and 2),
  ``internal`` (exit 1: an internal error reported on one line - still a bug),
  ``multi-line`` (an error of more than one line);
* ``timeout`` (over the time limit), ``memory`` (peak RSS over the memory limit, or
  killed by the address-space limit);
* ``non-strict JSON`` (a ``--json`` output with NaN/Infinity, or not JSON at all).

Exits 1 if any input is in one of the last six counts. ``--keep DIR`` copies each failing
input's files (and its stderr) to DIR, named by input number, to reproduce it.

    python benchmarks/fuzz_inputs.py -n 300 --seed 0
    python benchmarks/fuzz_inputs.py -n 10000 --seed 1 --time-limit 20 --memory-gib 1 --show 20
    for s in $(seq 101 120); do nice -n 19 python benchmarks/fuzz_inputs.py -n 500 --seed $s --keep kept; done
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPECIAL = [".inf", "-.inf", ".nan", "1.0e+308", "1.0e-300", "0", "-0.0", "10000000", str(2**63), "true", "'4'",
           "[]", "{}", "null", "2020-01-01", "!!binary aGk=", "-1", "0.5", "1", "2", "'x'"]
JSON_SPECIAL = ["Infinity", "-Infinity", "NaN", "1e308", "1e-300", "0", "-0.0", "10000000", str(2**63), "true",
                '"4"', "[]", "{}", "null", "-1"]
HAZARDS = [
    "a: &a [*a]\n",
    "x: " + "[" * 1000 + "]" * 1000 + "\n",
    "cluster:\n  nodes: " + "9" * 4301 + "\n",
    "name: 2020-01-01\n",
    "cluster:\n  2020-01-01: 1\n",
    "description: !!set {a, b}\n",
    "\n".join(["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"] + [f"a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 10) + "]"
                                                 for i in range(1, 9)]) + "\n",
    "cluster: [1,\n  nodes: {\n",
    "\0\0\0",
    "cluster:\n" + "".join(f"  k{i}: 1\n" for i in range(30_000)),
]


def leaves(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from leaves(v, (*prefix, k))
    elif isinstance(data, list) and data:
        for i, v in enumerate(data[:3]):
            yield from leaves(v, (*prefix, i))
    else:
        yield prefix


def set_in(data, path, value):
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


class Generator:
    def __init__(self, seed: int, work: Path):
        self.rng = random.Random(seed)
        self.work = work
        self.scenarios = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted(
            (ROOT / "scenarios" / "validation" / "training_systems").glob("*.yaml"))[:8]
        self.config_paths = self._config_paths()
        self.profile = json.loads((ROOT / "calibration" / "profiles" / "cpu-amd-epyc-2core.json").read_text())
        self.profile_leaves = [p for p in leaves(self.profile) if p and isinstance(p[-1], str)]
        self.csv = (ROOT / "scenarios" / "validation" / "published_cases.csv").read_text().splitlines()
        self.fifo = work / "fifo"
        os.mkfifo(self.fifo)
        (work / "afile").write_text("x")

    @staticmethod
    def _config_paths():
        from simulator.sweep.store import _config_order

        return sorted(_config_order())

    def value(self) -> str:
        r = self.rng.random()
        if r < 0.7:
            return self.rng.choice(SPECIAL)
        if r < 0.85:
            return str(self.rng.choice([-1, 1]) * 10 ** self.rng.randint(0, 30))
        return repr(self.rng.uniform(-1e3, 1e3))

    def path(self, i: int, name: str) -> Path:
        return self.work / f"{i}-{name}"

    def make(self, i: int) -> tuple[str, list[str], Path | None]:
        kind = self.rng.choice(["scenario", "set", "set", "profile", "csv", "sweep", "output", "special", "hazard",
                                "paths"])
        out = self.path(i, "out.json")
        quick = ["--set", "simulation.iterations=1"] if self.rng.random() < 0.8 else []
        if kind == "scenario":
            src = self.rng.choice(self.scenarios)
            data = yaml.safe_load(src.read_text())
            set_in(data, self.rng.choice(list(leaves(data))), "__MUT__")
            text = yaml.safe_dump(data, sort_keys=False).replace("__MUT__", self.value(), 1)
            path = self.path(i, "s.yaml")
            path.write_text(text)
            return kind, ["simulate", str(path), "-q", "--json", str(out), *quick], out
        if kind == "set":
            sets = [f"{self.rng.choice(self.config_paths)}={self.value()}" for _ in range(self.rng.randint(1, 3))]
            if self.rng.random() < 0.25:  # Horovod's fusion loop: a cycle clock, special times (issue 18)
                sets.insert(0, "training.framework=horovod")
            return kind, ["simulate", "-q", "--json", str(out), *quick, *[a for s in sets for a in ("--set", s)]], out
        if kind == "profile":
            data = json.loads(json.dumps(self.profile))
            target = self.rng.choice(self.profile_leaves)
            set_in(data, target, "__MUT__")
            text = json.dumps(data).replace('"__MUT__"', self.rng.choice(JSON_SPECIAL), 1)
            path = self.path(i, "p.json")
            path.write_text(text)
            scen = ROOT / "scenarios" / "validation" / "measured_here" / "alexnet-gloo-p2-b2-20261201T121941.yaml"
            return kind, ["simulate", str(scen), "-q", "--json", str(out), "--set", f"calibration={path}", *quick], out
        if kind == "csv":
            header, rows = self.csv[0], self.rng.sample(self.csv[1:], 2)
            cells = [r.split(",") for r in rows]
            row = self.rng.choice(cells)
            col = self.rng.randrange(len(row))
            row[col] = self.rng.choice(["inf", "nan", "1e308", "0", "-1", "1e-300", "x" * 200_000, "", "\0", "true",
                                        "10000000", '"a,b"'])
            path = self.path(i, "c.csv")
            path.write_text("\n".join([header, *(",".join(c) for c in cells)]) + "\n")
            return kind, ["validate", str(path), "--json", str(out)], out
        if kind == "sweep":
            sweep = {"set": ["simulation.iterations=1"], "axes": {"grid": {"cluster.nodes": [1, 2]}}}
            choice = self.rng.randrange(5)
            v = self.rng.choice(SPECIAL)
            text = yaml.safe_dump(sweep)
            if choice == 0:
                text += f"replications: {v}\n"
            elif choice == 1:
                text += f"axes:\n  random:\n    samples: {v}\n    params:\n      workload.batch_per_gpu: {{randint: [1, 8]}}\n"
            elif choice == 2:
                dist = self.rng.choice(["uniform", "loguniform", "randint"])
                text = text.replace("axes:\n", f"axes:\n  random:\n    samples: 2\n    params:\n"
                                                f"      cluster.nic.bandwidth_gbps: {{{dist}: [{v}, {self.value()}]}}\n")
            elif choice == 3:
                text = text.replace("cluster.nodes", self.rng.choice(["simulation", "cluster", "nope", "cluster.nodes.x"]))
            else:
                text = text.replace("[1, 2]", f"[{v}]")
            path = self.path(i, "sw.yaml")
            path.write_text(text)
            return kind, ["sweep", str(path), "-o", str(self.path(i, "r.csv")), "--executor", "serial", "--no-cache"], None
        if kind == "output":
            target = self.rng.choice(["/dev/full", str(self.work / "nope" / "x.json"), str(self.work / "afile" / "x"),
                                      str(self.work), "a\0b"])
            opt = self.rng.choice([["simulate", "-q", "--json"], ["simulate", "-q", "--trace"], ["topology", "--png"],
                                   ["simulate", "-q", "--set", "simulation.iterations=1", "--json"]])
            return kind, [*opt, target], None
        if kind == "special":
            target = self.rng.choice(["/dev/zero", str(self.fifo), str(self.work), "a\0b", "/nonexistent"])
            cmd = self.rng.choice([["simulate", target, "-q"], ["validate", target],
                                   ["simulate", "-q", "--set", f"calibration={target}"],
                                   ["sweep", target, "-o", str(self.path(i, "r.csv"))]])
            return kind, cmd, None
        if kind == "paths":  # input files naming files outside their folder (refused, exit 2)
            folder = self.path(i, "sub")
            folder.mkdir()
            target = self.rng.choice(["../afile", "/etc/hostname", "/dev/zero", str(self.fifo), "../../../../x",
                                      "a/../../afile", "link", "", "a\0b", str(self.work / "afile")])
            if target == "link":
                os.symlink(self.work / "afile", folder / "link")
            field = self.rng.choice(["calibration", "base", "csv"])
            if field == "calibration":
                path = folder / "s.yaml"
                path.write_text(json.dumps({"calibration": target}))
                return kind, ["simulate", str(path), "-q", *quick], None
            if field == "base":
                path = folder / "sw.yaml"
                path.write_text(json.dumps({"base": target}))
                return kind, ["sweep", str(path), "-o", str(self.path(i, "r.csv")), "--executor", "serial",
                              "--no-cache"], None
            path = folder / "c.csv"
            path.write_text(f"case_id,source,metric,value,scenario\nx,y,iteration_time_s,1,{target}\n")
            return kind, ["validate", str(path), "--json", str(out)], out
        path = self.path(i, "h.yaml")
        path.write_text(self.rng.choice(HAZARDS))
        return kind, ["simulate", str(path), "-q"], None


def run_child(argv: list[str], stdout: Path, stderr: Path, memory_bytes: int) -> None:
    """In the forked child: limits, redirect output, run the CLI, exit with its code."""
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(err, 2)
    code = 0
    try:
        from simulator.cli import main

        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=300, help="inputs to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per input")
    ap.add_argument("--memory-gib", type=float, default=1.0, help="peak RSS counted as runaway memory")
    ap.add_argument("--show", type=int, default=10, help="print this many failing inputs")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="copy the input files of every failing input here (DIR/INDEX-...), to reproduce them")
    args = ap.parse_args()

    os.environ.pop("CLUSTERSIM_ALLOW_LARGE", None)
    os.environ.pop("CLUSTERSIM_DEBUG", None)
    os.environ.pop("CLUSTERSIM_ALLOW_OUTSIDE_PATHS", None)
    from simulator.cli.app import load_commands

    load_commands()  # the commands imported once, before forking

    counts: collections.Counter[str] = collections.Counter()
    by_kind: collections.Counter[tuple[str, str]] = collections.Counter()
    failures: list[tuple[str, str, list[str], str]] = []
    slowest = 0.0
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="clustersim-fuzz-") as tmp:
        work = Path(tmp)
        gen = Generator(args.seed, work)
        mem_limit = int(args.memory_gib * 2**30)
        for i in range(args.n):
            kind, argv, json_out = gen.make(i)
            so, se = work / f"{i}.out", work / f"{i}.err"
            t0 = time.time()
            pid = os.fork()
            if pid == 0:
                run_child(argv, so, se, 4 * mem_limit + 2**31)
            deadline = t0 + args.time_limit
            status = rusage = None
            while True:
                done, status, rusage = os.wait4(pid, os.WNOHANG)
                if done:
                    break
                if time.time() > deadline:
                    os.killpg(pid, signal.SIGKILL)
                    _, status, rusage = os.wait4(pid, 0)
                    status = None
                    break
                time.sleep(0.01)
            elapsed = time.time() - t0
            slowest = max(slowest, elapsed)
            err = se.read_text(errors="replace") if se.exists() else ""
            out_text = so.read_text(errors="replace") if so.exists() else ""
            peak = rusage.ru_maxrss * 1024  # Linux: KiB
            if status is None:
                verdict = "timeout"
            elif os.WIFSIGNALED(status) or "MemoryError" in err or peak > mem_limit:
                verdict = "memory" if (peak > mem_limit or "MemoryError" in err) else "traceback"
            else:
                code = os.WEXITSTATUS(status)
                if "Traceback" in err + out_text or code not in (0, 1, 2):
                    verdict = "traceback"
                elif code == 1:
                    verdict = "internal"
                elif code == 2:
                    verdict = "refused" if len(err.strip().splitlines()) == 1 else "multi-line"
                else:
                    verdict = "ok"
                    if json_out is not None and json_out.exists():
                        try:
                            json.loads(json_out.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(
                                ValueError(c)))
                        except ValueError:
                            verdict = "non-strict JSON"
            counts[verdict] += 1
            by_kind[(kind, verdict)] += 1
            if verdict not in ("ok", "refused"):
                failures.append((verdict, kind, argv, (err.strip().splitlines() or [""])[-1][:300]))
                if args.keep is not None:
                    _keep(work, i, args.keep)
    wall = time.time() - start
    print(f"{args.n} inputs, seed {args.seed}, {wall:.0f} s (slowest {slowest:.1f} s)")
    for verdict in ("ok", "refused", "traceback", "internal", "multi-line", "timeout", "memory", "non-strict JSON"):
        print(f"  {verdict:16s} {counts[verdict]}")
    kinds = sorted({k for k, _ in by_kind})
    print("  by kind: " + "; ".join(
        f"{k} " + ", ".join(f"{v}={n}" for (kk, v), n in sorted(by_kind.items()) if kk == k) for k in kinds))
    for verdict, kind, argv, last in failures[: args.show]:
        shown = [a if len(a) < 120 else a[:60] + "..." for a in argv]
        print(f"- {verdict} [{kind}] {' '.join(map(repr, shown))}\n    {last}")
    sys.exit(1 if any(counts[v] for v in ("traceback", "internal", "multi-line", "timeout", "memory",
                                           "non-strict JSON")) else 0)


def _keep(work: Path, i: int, keep: Path) -> None:
    """Copy input ``i``'s files (``work/i-*``, folders included) and its stderr to ``keep``."""
    import shutil

    keep.mkdir(parents=True, exist_ok=True)
    for path in [*work.glob(f"{i}-*"), work / f"{i}.err"]:
        target = keep / path.name
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy(path, target)


if __name__ == "__main__":
    main()
