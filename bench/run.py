#!/usr/bin/env python3
"""The benchmark of issue 9: this product against the floor (bench/floor.py) and the Node
original, on loopback, with one load generator (bench/loadgen). `make bench` runs it.

    .venv/bin/python bench/run.py                       # full: 3 rounds of S1, S2, then extras, profile
    .venv/bin/python bench/run.py --quick               # 1 round, short phases, S1 and S2
    .venv/bin/python bench/run.py --only product --scenarios S1 --rounds 1
    .venv/bin/python bench/run.py --product-dir /tmp/taskchat-baseline --save-baseline

Each run starts its server afresh on a reseeded database (vacuumed and checkpointed), runs
one scenario and stops the server; targets alternate A B C within every round. Results:
bench/out/<stamp>/ (every run's JSON and logs), and for a full run bench/results.json,
bench/RESULTS.md and bench/ratios.png.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOADGEN = HERE / "loadgen" / "loadgen.js"
TARGETS = ("product", "floor", "node")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432"

# name: load generator settings; `targets`: who runs it; `db`: the product's database.
SCENARIOS = {
    "S1": dict(users=1000, tasks=100, mode="closed", window=100, duration=25, drain=10, idle=3,
               targets=TARGETS, db="postgresql", main=True,
               what="1000 users, 100 tasks of 10, every user sends, closed loop, at most 100 unacked"),
    "S2": dict(users=200, tasks=20, mode="open", rate=200, duration=20, drain=10, idle=2,
               targets=TARGETS, db="postgresql", main=True,
               what="200 users, 20 tasks of 10, open loop, 200 messages per second in all"),
    "S1-sqlite": dict(users=1000, tasks=100, mode="closed", window=100, duration=25, drain=10, idle=3,
                      targets=("product",), db="sqlite",
                      what="S1 with the product on SQLite (WAL), ALLOW_SQLITE_IN_PRODUCTION=1"),
    "S1-poll": dict(users=1000, tasks=100, mode="closed", window=100, duration=25, drain=10, idle=3,
                    polling=0.05, targets=TARGETS, db="postgresql",
                    what="S1 with 5% of the clients on long-polling (no upgrade)"),
    "C10k": dict(users=10000, tasks=1000, mode="none", duration=0, drain=0, idle=5, concurrency=100,
                 targets=TARGETS, db="postgresql", connect_timeout=60,
                 what="10,000 clients connect and join (10 per task), then idle; no messages"),
}
QUICK = {"S1": dict(duration=8, drain=5), "S2": dict(duration=8, drain=5), "S1-sqlite": dict(duration=8, drain=5),
         "S1-poll": dict(duration=8, drain=5), "C10k": dict(users=3000, tasks=300)}

# The figures of the issue: (scenario, label, path in a result, unit, higher is better)
FIGURES = [
    ("S1", "S1 messages persisted/s", "send.acksPerSecond", "msg/s", True),
    ("S1", "S1 server CPU per message", "server.cpuPerMessageMs", "ms", False),
    ("S1", "S1 RSS per connection", "server.rssPerConnectionKb", "KiB", False),
    ("S1", "S1 connect+auth rate", "connect.perSecond", "conn/s", True),
    ("S2", "S2 achieved rate", "send.acksPerSecond", "msg/s", True),
    ("S2", "S2 end-to-end p99", "deliveries.latencyMs.p99", "ms", False),
    ("S2", "S2 deliveries missing at give-up", "deliveries.missing", "", False),
]
# Shown beside them, without a chart bar.
DETAILS = [
    ("S1", "S1 end-to-end p50 / p99", ("deliveries.latencyMs.p50", "deliveries.latencyMs.p99"), "ms"),
    ("S1", "S1 ack p99", ("send.ackLatencyMs.p99",), "ms"),
    ("S1", "S1 join p99", ("join.latencyMs.p99",), "ms"),
    ("S1", "S1 lost / duplicated", ("deliveries.lost", "deliveries.duplicated"), ""),
    ("S1", "S1 failed sends / connects", ("send.failed", "connect.failed"), ""),
    ("S1", "S1 send-phase CPU per message", ("server.cpuSendPerMessageMs",), "ms"),
    ("S1", "S1 PostgreSQL CPU per message", ("db.cpuSendPerMessageMs",), "ms"),
    ("S2", "S2 end-to-end p50 / max", ("deliveries.latencyMs.p50", "deliveries.latencyMs.max"), "ms"),
    ("S2", "S2 failed sends / unacked at give-up", ("send.failed", "send.unacked"), ""),
    ("S2", "S2 lost (of acked messages)", ("deliveries.lost",), ""),
]


def log(*args: object) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def get(result: dict, path: str):
    value = result
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


# ---- environment: databases, the Node peer, versions -------------------------------------
def pg_exec(pg: str, dbname: str, sql: str, fetch: bool = False):
    import psycopg

    with psycopg.connect(f"{pg}/{dbname}", autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if fetch else None


def ensure_database(pg: str, name: str, fresh: bool = False) -> None:
    if fresh:  # a new database: the checkout's migrations apply from the start
        pg_exec(pg, "postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not pg_exec(pg, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'", fetch=True):
        pg_exec(pg, "postgres", f'CREATE DATABASE "{name}"')
        log(f"created database {name}")


def settle(pg: str, name: str) -> None:
    """After a seed: vacuum and analyze the database, then checkpoint, so that the
    previous run's deleted rows, stale statistics and dirty pages are dealt with
    now rather than by autovacuum or a checkpoint during whichever run comes next
    (on two cores, that work is taken from the server being measured)."""
    pg_exec(pg, name, "VACUUM ANALYZE")
    pg_exec(pg, "postgres", "CHECKPOINT")


def postmaster_pid(pg: str) -> int:
    try:
        datadir = pg_exec(pg, "postgres", "SHOW data_directory", fetch=True)[0][0]
        return int(Path(datadir, "postmaster.pid").read_text().split()[0])
    except Exception:  # noqa: BLE001 - without the pid (0) the runs leave PostgreSQL's CPU out
        return 0


def node_peer_source(arg: str | None) -> Path:
    for cand in (arg, os.environ.get("NODE_PEER_DIR"), REPO.parent / "shared" / "peers" / "node-seed",
                 "/work/shared/peers/node-seed"):
        if cand and Path(cand, "server.js").is_file():
            return Path(cand)
    sys.exit("bench: the Node peer (shared/peers/node-seed) was not found; pass --node-dir")


def prepare_node_peer(src: Path) -> Path:
    """A copy of the read-only peer in a temporary directory, `npm ci` there (kept between runs)."""
    digest = hashlib.sha256((src / "package-lock.json").read_bytes() + (src / "server.js").read_bytes()
                            + (src / "seed.js").read_bytes()).hexdigest()[:12]
    dest = Path(tempfile.gettempdir()) / f"taskchat-bench-node-seed-{digest}"
    if not (dest / ".installed").exists():
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("node_modules"))
        log(f"npm ci in {dest}")
        run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=dest)
        (dest / ".installed").touch()
    return dest


def versions(product_py: str, pg: str, node_dir: Path, product_dir: Path) -> dict:
    out: dict = {}
    code = ("import importlib.metadata as m, platform, json;"
            "names=['flask','flask-socketio','python-socketio','python-engineio','gunicorn','gevent','gevent-websocket',"
            "'greenlet','sqlalchemy','psycopg','flask-sqlalchemy','limits','flask-limiter','pyjwt','simple-websocket'];"
            "print(json.dumps(dict([('python', platform.python_version())]+[(n, m.version(n)) for n in names])))")
    try:
        out["python"] = json.loads(run([product_py, "-c", code], capture_output=True, text=True).stdout)
    except Exception as err:  # noqa: BLE001
        out["python"] = {"error": str(err)}
    out["node"] = run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    lock = json.loads((node_dir / "package-lock.json").read_text())
    out["node_peer"] = {n: lock["packages"].get(f"node_modules/{n}", {}).get("version")
                        for n in ("socket.io", "engine.io", "ws", "express", "jsonwebtoken", "pg")}
    lg = json.loads((HERE / "loadgen" / "package-lock.json").read_text())
    out["loadgen"] = {n: lg["packages"].get(f"node_modules/{n}", {}).get("version")
                      for n in ("socket.io-client", "engine.io-client", "ws")}
    try:
        out["postgresql"] = pg_exec(pg, "postgres", "SHOW server_version", fetch=True)[0][0]
    except Exception as err:  # noqa: BLE001
        out["postgresql"] = f"unavailable: {err}"
    try:
        commit = run(["git", "-C", str(product_dir), "rev-parse", "--short", "HEAD"],
                     capture_output=True, text=True).stdout.strip()
        dirty = run(["git", "-C", str(product_dir), "status", "--porcelain", "--untracked-files=no"],
                    capture_output=True, text=True).stdout.strip()
        out["product_commit"] = commit + (" (with uncommitted changes)" if dirty else "")
    except Exception:  # noqa: BLE001
        out["product_commit"] = "unknown"
    return out


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release(), "os": platform.platform(),
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


# ---- servers -----------------------------------------------------------------------------
class Server:
    """One server process (group) that this harness started, and nothing else."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, env: dict, port: int, logfile: Path):
        self.name, self.cmd, self.cwd, self.env, self.port, self.logfile = name, cmd, cwd, env, port, logfile
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 40.0) -> None:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.logfile}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except Exception:  # noqa: BLE001
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /health within {timeout}s; see {self.logfile}")

    def worker_pid(self) -> int:
        """gunicorn's worker (the master's child), or the process itself."""
        assert self.proc
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            return int(kids[0]) if kids else self.proc.pid
        except OSError:
            return self.proc.pid

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def base_env() -> dict:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    return {k: os.environ[k] for k in keep if k in os.environ}


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out = Path(args.out_dir or HERE / "out" / self.stamp)
        self.out.mkdir(parents=True, exist_ok=True)
        self.product_dir = Path(args.product_dir).resolve()
        venv = Path(args.product_venv).absolute() if args.product_venv else self.product_dir / ".venv"
        if not (venv / "bin" / "gunicorn").exists():
            venv = REPO / ".venv"
        self.venv = venv
        self.harness_venv = REPO / ".venv" if (REPO / ".venv" / "bin" / "gunicorn").exists() else venv
        self.pg = args.pg.rstrip("/")
        self.secret = secrets.token_hex(32)  # 64 bytes: production's minimum is 32
        self.node_dir = prepare_node_peer(node_peer_source(args.node_dir)) if "node" in args.only else None
        self.db_pid = postmaster_pid(self.pg)
        self.sqlite_dir = Path(tempfile.mkdtemp(prefix="taskchat-bench-sqlite-"))
        self.commands: dict[str, str] = {}
        self.upgraded: set[str] = set()
        self.has_bench_seed: bool | None = None

    # -- per target: environment, seed, start command --
    def product_env(self, db: str) -> dict:
        env = base_env() | {
            "APP_ENV": "production", "SECRET_KEY": secrets.token_hex(32), "JWT_SECRET_KEY": self.secret,
            "CORS_ORIGINS": "http://127.0.0.1", "APP_HOST": "127.0.0.1", "APP_PORT": str(self.args.port_base + 1),
            "FLASK_APP": "wsgi.py",
        }
        if db == "sqlite":
            env |= {"DATABASE_URL": f"sqlite:///{self.sqlite_dir}/bench.db", "ALLOW_SQLITE_IN_PRODUCTION": "1"}
        else:
            env["DATABASE_URL"] = self.pg.replace("postgresql://", "postgresql+psycopg://", 1) + "/bench_py"
        return env

    def seed(self, target: str, sc: dict) -> None:
        users, tasks = sc["users"], sc["tasks"]
        t0 = time.monotonic()
        if target == "product":
            env = self.product_env(sc["db"])
            flask = str(self.venv / "bin" / "flask")
            if sc["db"] not in self.upgraded:
                if sc["db"] == "postgresql":
                    ensure_database(self.pg, "bench_py", fresh=True)
                run([flask, "db", "upgrade"], cwd=self.product_dir, env=env, capture_output=True)
                self.upgraded.add(sc["db"])
            if self.has_bench_seed is None:
                helptext = run([flask, "--help"], cwd=self.product_dir, env=env, capture_output=True, text=True).stdout
                self.has_bench_seed = "bench-seed" in helptext
            if self.has_bench_seed:
                cmd = [flask, "bench-seed", "--users", str(users), "--tasks", str(tasks)]
            else:  # an older checkout: this harness's seed against that checkout's models
                cmd = [str(self.venv / "bin" / "python"), str(HERE / "seed_compat.py"), str(REPO / "app" / "cli.py"),
                       str(users), str(tasks)]
            run(cmd, cwd=self.product_dir, env=env, capture_output=True)
            if sc["db"] == "postgresql":
                settle(self.pg, "bench_py")
            self.commands["seed product"] = " ".join(
                ["DATABASE_URL=…", "flask", *cmd[1:]] if self.has_bench_seed else cmd)
        elif target == "node":
            ensure_database(self.pg, "bench_node")
            env = base_env() | {"DATABASE_URL": f"{self.pg}/bench_node"}
            cmd = ["node", "seed.js", "--users", str(users), "--tasks", str(tasks)]
            run(cmd, cwd=self.node_dir, env=env, capture_output=True)
            settle(self.pg, "bench_node")
            self.commands["seed node"] = f"DATABASE_URL={self.pg}/bench_node " + " ".join(cmd)
        log(f"  seeded {target} ({users} users, {tasks} tasks) in {time.monotonic() - t0:.1f}s")

    def server(self, target: str, sc: dict, logfile: Path) -> Server:
        port = self.args.port_base + 1 + TARGETS.index(target)
        if target == "product":
            env = self.product_env(sc["db"])
            cmd = [str(self.venv / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
            shown = {k: ("…" if "SECRET" in k else v) for k, v in env.items() if k not in base_env()}
            self.commands[f"product ({sc['db']})"] = (
                " ".join(f"{k}={v}" for k, v in shown.items())
                + f" {self.venv}/bin/gunicorn -c gunicorn.conf.py wsgi:app"
                + f"   # cwd {self.product_dir}")
            return Server("product", cmd, self.product_dir, env, port, logfile)
        if target == "floor":
            env = base_env() | {"JWT_SECRET_KEY": self.secret, "APP_HOST": "127.0.0.1", "APP_PORT": str(port)}
            cmd = [str(self.harness_venv / "bin" / "gunicorn"), "-c", "bench/floor.conf.py", "bench.floor:app"]
            self.commands["floor"] = (f"JWT_SECRET_KEY=… APP_PORT={port} "
                                      ".venv/bin/gunicorn -c bench/floor.conf.py bench.floor:app")
            return Server("floor", cmd, REPO, env, port, logfile)
        env = base_env() | {"PORT": str(port), "HOST": "127.0.0.1", "JWT_SECRET": self.secret,
                            "DATABASE_URL": f"{self.pg}/bench_node"}
        self.commands["node"] = (f"PORT={port} HOST=127.0.0.1 JWT_SECRET=… DATABASE_URL={self.pg}/bench_node "
                                 "node server.js   # cwd: a copy of node-seed after npm ci")
        return Server("node", ["node", "server.js"], self.node_dir, env, port, logfile)

    # -- one run --
    def run_one(self, name: str, target: str, round_no: int, profile: bool = False) -> dict | None:
        sc = self.scenario(name)
        tag = f"{name}-{target}-r{round_no}" + ("-profile" if profile else "")
        log(f"run {tag}")
        try:
            self.seed(target, sc)
        except subprocess.CalledProcessError as err:
            log(f"  seed failed: {err}\n{(err.stderr or b'')[-2000:]!r}")
            return None
        srv = self.server(target, sc, self.out / f"{tag}.server.log")
        try:
            srv.start()
            time.sleep(1.0)
            result = self.loadgen(name, sc, srv, tag, profile)
        except RuntimeError as err:
            log(f"  failed: {err}")
            return None
        finally:
            srv.stop()
        if result is None:
            return None
        result.update(scenario=name, target=target, round=round_no, database=sc["db"] if target == "product" else
                      ("none" if target == "floor" else "postgresql"))
        (self.out / f"{tag}.json").write_text(json.dumps(result, indent=1))
        log("  " + brief(result))
        return result

    def scenario(self, name: str) -> dict:
        return scenario_settings(name, self.args)

    def loadgen(self, name: str, sc: dict, srv: Server, tag: str, profile: bool) -> dict | None:
        cmd = ["node", str(LOADGEN), "--url", f"http://127.0.0.1:{srv.port}", "--ns", "/tasks",
               "--users", str(sc["users"]), "--tasks", str(sc["tasks"]), "--secret", self.secret,
               "--mode", sc["mode"], "--duration", str(sc["duration"]), "--drain", str(sc["drain"]),
               "--idle", str(sc["idle"]), "--label", tag, "--server-pid", str(srv.proc.pid),
               "--concurrency", str(sc.get("concurrency", 50)),
               "--connect-timeout", str(sc.get("connect_timeout", 20))]
        if sc["mode"] == "closed":
            cmd += ["--window", str(sc["window"])]
        if sc["mode"] == "open":
            cmd += ["--rate", str(sc["rate"])]
        if sc.get("polling"):
            cmd += ["--polling-fraction", str(sc["polling"])]
        if self.db_pid and (srv.name != "floor") and sc["db"] == "postgresql":
            cmd += ["--db-pid", str(self.db_pid)]
        self.commands[f"loadgen {name}"] = " ".join(
            "…" if i and cmd[i - 1] in ("--secret", "--server-pid", "--db-pid", "--label") else
            ("http://127.0.0.1:PORT" if i and cmd[i - 1] == "--url" else c) for i, c in enumerate(cmd)
        ).replace(str(LOADGEN), "bench/loadgen/loadgen.js")
        limit = 60 + sc["users"] / 10 + sc["idle"] + sc["duration"] + sc["drain"] + 2 * sc.get("connect_timeout", 20)
        errlog = open(self.out / f"{tag}.loadgen.log", "wb")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog, text=True, start_new_session=True)
        spy = None
        result = None
        deadline = time.monotonic() + limit
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                if profile and line.startswith(f"PHASE {self.args.profile_phase}"):
                    # connect and join together take a few seconds at S1's size
                    seconds = sc["duration"] if self.args.profile_phase == "send" else 5
                    spy = self.start_profiler(srv, seconds, tag)
                elif line.startswith("RESULT "):
                    result = json.loads(line[7:])
                if time.monotonic() > deadline:
                    break
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"  load generator over its time limit ({limit:.0f}s): stopped")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if spy:
            spy.wait(timeout=60)
        if result is None:
            log(f"  no result; see {self.out / f'{tag}.loadgen.log'}")
        return result

    # -- profile --
    def start_profiler(self, srv: Server, duration: float, tag: str) -> subprocess.Popen | None:
        pyspy = self.harness_venv / "bin" / "py-spy"
        if not pyspy.exists():
            log("  py-spy is not installed (requirements-bench.txt): no profile")
            return None
        raw = self.out / f"{tag}.pyspy.txt"
        self.profile_raw = raw
        cmd = [str(pyspy), "record", "--pid", str(srv.worker_pid()), "--duration", str(int(duration)),
               "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking", "--gil"]
        self.commands["profile"] = " ".join(cmd[:3] + ["<gunicorn worker pid>"] + cmd[4:]).replace(
            str(raw), "<out>.txt")
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.out / f"{tag}.pyspy.log", "wb"))


def scenario_settings(name: str, args: argparse.Namespace) -> dict:
    sc = dict(SCENARIOS[name])
    if args.quick:
        sc.update(QUICK.get(name, {}))
    for key in ("duration", "drain"):
        value = getattr(args, key, None)
        if value is not None and sc.get("mode") != "none":
            sc[key] = value
    return sc


def brief(r: dict) -> str:
    return (f"connect {get(r, 'connect.ok')}/{r['users']} ({get(r, 'connect.perSecond')}/s), "
            f"joined {get(r, 'join.ok')}, acked {get(r, 'send.acked')} ({get(r, 'send.acksPerSecond')}/s), "
            f"failed {get(r, 'send.failed')} {get(r, 'send.errors') or ''}, lost {get(r, 'deliveries.lost')}, "
            f"p99 {get(r, 'deliveries.latencyMs.p99')} ms, cpu/msg {get(r, 'server.cpuPerMessageMs')} ms, "
            f"rss/conn {get(r, 'server.rssPerConnectionKb')} KiB")


# ---- profile summary ---------------------------------------------------------------------------
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


_GROUPS = {"flask_socketio": "socketio", "socketio": "socketio", "engineio": "engineio", "geventwebsocket": "gevent",
           "gevent": "gevent", "greenlet": "gevent", "sqlalchemy": "sqlalchemy", "flask_sqlalchemy": "sqlalchemy",
           "psycopg": "psycopg", "psycopg_binary": "psycopg", "psycopg_pool": "psycopg", "limits": "limits",
           "flask_limiter": "limits", "marshmallow": "marshmallow", "flask": "flask", "werkzeug": "werkzeug",
           "jwt": "jwt", "flask_jwt_extended": "jwt", "json": "json", "simplejson": "json", "orjson": "json",
           "app": "app", "bench": "bench", "redis": "redis"}


def group_of(path: str) -> str:
    """The library of a frame's file, as py-spy prints it (`sqlalchemy/orm/session.py`,
    `app/services/chat.py`) or as a full path."""
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    path = re.sub(r"^.*/lib/python3\.\d+/", "", path)
    path = re.sub(r"^.*/(app|bench)/", r"\1/", path)
    top = path.split("/", 1)[0].removesuffix(".py")
    if top.startswith("<"):  # generated code: `<sqlalchemy generated _go() wrapper ...>`
        return next((g for k, g in _GROUPS.items() if k in top), "other")
    if top in _GROUPS:
        return _GROUPS[top]
    if top in sys.stdlib_module_names:
        return "stdlib"
    return top or "other"


def summarize_profile(raw: Path, title: str, phase: str = "send") -> str:
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    own_group: dict[str, int] = {}
    total_group: dict[str, int] = {}
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = []
        for part in stack.split(";"):
            m = _FRAME.match(part.strip())
            if not m or not m.group("file"):
                continue
            path = m.group("file")
            short = re.sub(r"^.*?(site-packages|python3\.\d+)/", "", path)
            short = re.sub(r"^.*/(app|bench)/", r"\1/", short)
            frames.append((f"{m.group('func')} ({short})", group_of(path)))
        if not frames:
            continue
        samples += n
        leaf, leaf_group = frames[-1]
        own[leaf] = own.get(leaf, 0) + n
        own_group[leaf_group] = own_group.get(leaf_group, 0) + n
        for name in {f for f, _ in frames}:
            total[name] = total.get(name, 0) + n
        for grp in {g for _, g in frames}:
            total_group[grp] = total_group.get(grp, 0) + n
    if not samples:
        return f"{title}\n(no samples)\n"
    pc = lambda n: f"{100 * n / samples:5.1f}%"  # noqa: E731
    lines = [title, f"{samples} samples of the gunicorn worker (py-spy, 200 Hz, only while it holds the GIL: running "
             "Python, not waiting for a system call or preempted), S1 "
             + ("send phase" if phase == "send" else "connect and join (first 5 s)"), "",
             "Own time by library (the frame running):"]
    lines += [f"  {pc(n)}  {g}" for g, n in sorted(own_group.items(), key=lambda kv: -kv[1])[:12]]
    lines += ["", "Inclusive time by library (any frame of it on the stack):"]
    lines += [f"  {pc(n)}  {g}" for g, n in sorted(total_group.items(), key=lambda kv: -kv[1])
              if g not in ("gevent", "greenlet")][:12]
    lines += ["", "Top functions, own time:"]
    lines += [f"  {pc(n)}  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:15]]
    lines += ["", "Top functions of the app, inclusive time (with what they call):"]
    lines += [f"  {pc(n)}  {f}" for f, n in sorted(total.items(), key=lambda kv: -kv[1])
              if f.rsplit("(", 1)[-1].startswith("app/")][:15]
    return "\n".join(lines) + "\n"


# ---- aggregation and report ------------------------------------------------------------------
def complete(r: dict) -> dict:
    """Fill in figures that a result of an older load generator lacks."""
    d, snd = r.get("deliveries") or {}, r.get("send") or {}
    if "missing" not in d and "expected" in d and snd.get("acked") is not None:
        members = d["expected"] / snd["acked"] if snd["acked"] else r["users"] / r["tasks"]
        unacked = snd.get("sent", 0) - snd["acked"] - snd.get("failed", 0)
        d["missing"] = max(0, round(d["expected"] + members * unacked - d.get("received", 0)))
    if isinstance(r.get("db"), str):  # an older runner overwrote the database CPU with its name
        r["database"], r["db"] = r["db"], None
    return r


def medians(results: list[dict]) -> dict:
    """{scenario: {target: {path: median}}} over every figure and detail path."""
    results = [complete(r) for r in results]
    paths = {p for _, _, p, _, _ in FIGURES} | {p for d in DETAILS for p in d[2]} | {
        "connect.ok", "connect.failed", "join.ok", "join.failed", "deliveries.expected", "deliveries.received",
        "deliveries.duplicated", "send.acked", "send.failed", "connect.perSecond", "join.latencyMs.p99",
        "deliveries.latencyMs.p99", "deliveries.latencyMs.p50", "send.acksPerSecond", "server.rssPerConnectionKb",
        "server.cpuPerMessageMs", "deliveries.lost", "server.cpuPerConnectMs", "server.rssIdleKb",
        "deliveries.missing", "send.unacked"}
    out: dict = {}
    for r in results:
        out.setdefault(r["scenario"], {}).setdefault(r["target"], []).append(r)
    med: dict = {}
    for sc, by_target in out.items():
        for target, runs in by_target.items():
            cell = {"runs": len(runs)}
            for p in paths:
                values = [v for v in (get(r, p) for r in runs) if isinstance(v, (int, float))]
                if values:
                    cell[p] = statistics.median(values)
            med.setdefault(sc, {})[target] = cell
    return med


def fmt(v, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        v = f"{v:.3g}" if abs(v) < 10 else f"{v:,.0f}"
    else:
        v = f"{int(v):,}"
    return f"{v} {unit}".strip()


def ratio(a, b) -> str:
    if a is None or b is None:
        return "–"
    if b == 0:
        return "=" if a == 0 else "∞"
    r = a / b
    return f"{r:.2g}×" if r < 0.1 else f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def figures_table(med: dict) -> list[str]:
    rows = ["| figure | product | floor | Node | product/floor | product/Node | better |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for sc, label, path, unit, higher in FIGURES:
        cells = {t: get(med, f"{sc}.{t}") or {} for t in TARGETS}
        vals = {t: cells[t].get(path) for t in TARGETS}
        rows.append(f"| {label} | {fmt(vals['product'], unit)} | {fmt(vals['floor'], unit)} "
                    f"| {fmt(vals['node'], unit)} "
                    f"| {ratio(vals['product'], vals['floor'])} | {ratio(vals['product'], vals['node'])} "
                    f"| {'higher' if higher else 'lower'} |")
    for sc, label, paths, unit in DETAILS:
        cells = {t: get(med, f"{sc}.{t}") or {} for t in TARGETS}
        show = {t: " / ".join(fmt(cells[t].get(p)) for p in paths) + (f" {unit}" if unit else "") for t in TARGETS}
        rows.append(f"| {label} | {show['product']} | {show['floor']} | {show['node']} | | | |")
    return rows


def extras_table(results: list[dict]) -> list[str]:
    extra = [complete(r) for r in results if not SCENARIOS.get(r["scenario"], {}).get("main")]
    if not extra:
        return []
    rows = ["| scenario | target | db | connected ok/failed | conn/s | joined ok/failed | msg/s "
            "| lost / missing / expected | dup | e2e p99 | CPU/msg | RSS/conn | join p99 |",
            "|---|---|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in extra:
        rows.append(
            f"| {r['scenario']} | {r['target']} | {r.get('database')} "
            f"| {get(r, 'connect.ok')}/{get(r, 'connect.failed')} "
            f"| {fmt(get(r, 'connect.perSecond'))} "
            f"| {get(r, 'join.ok')}/{get(r, 'join.failed')} | {fmt(get(r, 'send.acksPerSecond'))} "
            f"| {get(r, 'deliveries.lost')} / {get(r, 'deliveries.missing')} / {get(r, 'deliveries.expected')} "
            f"| {get(r, 'deliveries.duplicated')} "
            f"| {fmt(get(r, 'deliveries.latencyMs.p99'), 'ms')} | {fmt(get(r, 'server.cpuPerMessageMs'), 'ms')} "
            f"| {fmt(get(r, 'server.rssPerConnectionKb'), 'KiB')} | {fmt(get(r, 'join.latencyMs.p99'), 'ms')} |")
    notes = [f"- {r['scenario']} {r['target']}: connect errors {get(r, 'connect.errors')}, "
             f"join errors {get(r, 'join.errors')}, "
             f"send errors {get(r, 'send.errors')}, unexpected disconnects {r.get('unexpectedDisconnects')}"
             for r in extra if get(r, "connect.failed") or get(r, "join.failed") or get(r, "send.failed")
             or r.get("unexpectedDisconnects")]
    return rows + ([""] + notes if notes else [])


def runs_table(results: list[dict]) -> list[str]:
    results = [complete(r) for r in results]
    rows = ["| run | msg/s | CPU/msg | RSS/conn | conn/s | e2e p50 | e2e p99 | lost / missing "
            "| failed / unacked sends | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if not SCENARIOS.get(r["scenario"], {}).get("main"):
            continue
        errs = {**(get(r, "connect.errors") or {}), **(get(r, "join.errors") or {}), **(get(r, "send.errors") or {})}
        rows.append(f"| {r['scenario']} {r['target']} r{r['round']} | {fmt(get(r, 'send.acksPerSecond'))} "
                    f"| {fmt(get(r, 'server.cpuPerMessageMs'), 'ms')} "
                    f"| {fmt(get(r, 'server.rssPerConnectionKb'), 'KiB')} "
                    f"| {fmt(get(r, 'connect.perSecond'))} | {fmt(get(r, 'deliveries.latencyMs.p50'), 'ms')} "
                    f"| {fmt(get(r, 'deliveries.latencyMs.p99'), 'ms')} "
                    f"| {get(r, 'deliveries.lost')} / {get(r, 'deliveries.missing')} "
                    f"| {get(r, 'send.failed')} / {get(r, 'send.unacked')} | {errs or ''} |")
    return rows


def oriented(med: dict, other: str) -> list[float | None]:
    """Per figure: how many times better the product is than `other` (>1: product better)."""
    out = []
    for sc, _, path, _, higher in FIGURES:
        p, o = get(med, f"{sc}.product") or {}, get(med, f"{sc}.{other}") or {}
        a, b = p.get(path), o.get(path)
        if a is None or b is None or (a == 0 and b == 0):
            out.append(1.0 if (a == 0 and b == 0) else None)
        elif a == 0 or b == 0:
            out.append(None)
        else:
            out.append(a / b if higher else b / a)
    return out


def chart(med: dict, base_med: dict | None, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (requirements-bench.txt): no chart")
        return False
    labels = [label for _, label, _, _, _ in FIGURES]
    series = [("product vs Node", oriented(med, "node"), "#d62728"),
              ("product vs floor", oriented(med, "floor"), "#1f77b4")]
    if base_med:
        series.insert(0, ("baseline product vs Node", oriented(base_med, "node"), "#ff9896"))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        ys = [v if v else 0 for v in values]
        ax.bar(xs, ys, width, label=name, color=color)
        for x, v in zip(xs, values, strict=True):  # one of each per figure
            ax.text(x, (v or 1) * 1.08 if v else 1, f"{v:.2g}" if v else "n/a", ha="center", fontsize=7, rotation=90,
                    va="bottom")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    top = max([v for _, values, _ in series for v in values if v] + [1.0])
    ax.set_ylim(top=top * 4)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("times better (>1: the product is better; n/a: a zero)")
    ax.set_title("taskchat: medians, product relative to the Node original and to the floor")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(args: argparse.Namespace, results: list[dict], med: dict, meta: dict, profile_text: str | None,
                 results_dir: Path) -> None:
    base = None
    base_file = HERE / "baseline" / "results.json"
    if base_file.exists() and not args.save_baseline:
        base = json.loads(base_file.read_text())
        base["medians"] = medians(base["runs"])
    has_chart = any(SCENARIOS[n].get("main") for n in med) and chart(med, base and base.get("medians"),
                                                                     results_dir / "ratios.png")
    m, v = meta["machine"], meta["versions"]
    lines = [
        "# Benchmark results (issue 9)", "",
        f"Generated by `bench/run.py` ({'quick' if args.quick else 'full'} run) on {meta['date']}, "
        f"{meta['rounds']} round(s), targets alternating {' '.join(args.only)} within each round. "
        "Medians over the rounds; every run starts its server afresh on a reseeded database "
        "(PostgreSQL: vacuumed, analyzed and checkpointed after the seed).", "",
        "- **product**: this project under `gunicorn -c gunicorn.conf.py` (one gevent-websocket worker), "
        "`APP_ENV=production`, default settings (rate limits included), PostgreSQL.",
        "- **floor**: `bench/floor.py`, Flask-SocketIO under the same worker, no database "
        "(decode the JWT, join the room, broadcast, ack).",
        "- **Node**: the Node original (`shared/peers/node-seed`, socket.io 4, pg), on PostgreSQL.",
        "- **load generator**: `bench/loadgen/loadgen.js` (socket.io-client, one Node process, WebSocket unless "
        "said otherwise), on the same machine; CPU and RSS are the server's process tree read from `/proc`.", "",
        "Scenarios:", "",
    ]
    lines += [f"- **{n}**: {sc['what']}" + (f"; send phase {scenario_settings(n, args)['duration']} s, "
                                             f"drain ≤ {scenario_settings(n, args)['drain']} s"
                                             if sc["mode"] != "none" else "") for n, sc in SCENARIOS.items()
              if n in meta["scenarios"]]
    if any(SCENARIOS[n].get("main") for n in med):
        lines += ["", "## Figures (medians)", ""] + figures_table(med)
    lines += ["", "CPU per message is the server's process tree, whole run (connect, join, idle, send, drain) "
              "divided by the acked messages; RSS per connection is (RSS after every client joined and idled − "
              "RSS before connecting) / joined clients. End-to-end latency is from the send to `new_message` at "
              "every member of the task. *Lost*: deliveries of acked messages that never arrived; "
              "*missing*: deliveries of every message sent and not refused (acked, or still unanswered "
              "when the load generator gave up after the drain) that had not arrived by then. "
              "PostgreSQL CPU counts every backend of the cluster (other users of it included)."]
    if has_chart:
        lines += ["", "![ratios](ratios.png)", ""]
    analysis = HERE / "ANALYSIS.md"  # written by hand: what the figures say, what would move them
    if analysis.exists() and not args.save_baseline:
        lines += ["", analysis.read_text().rstrip(), ""]
    if base:
        lines += ["", f"## Before: the baseline (product at {base['meta']['versions'].get('product_commit')}, "
                      f"{base['meta']['date']})", ""] + figures_table(base["medians"])
        lines += ["", "Product now against the baseline product (medians):", "",
                  "| figure | baseline | now | now/baseline |", "|---|---:|---:|---:|"]
        for sc, label, path, unit, _ in FIGURES:
            a = get(base["medians"], f"{sc}.product") or {}
            b = get(med, f"{sc}.product") or {}
            lines.append(f"| {label} | {fmt(a.get(path), unit)} | {fmt(b.get(path), unit)} "
                         f"| {ratio(b.get(path), a.get(path))} |")
    et = extras_table(results)
    if et:
        lines += ["", "## Other targets", ""] + et
    lines += ["", "## Every run", ""] + runs_table(results)
    lines += ["", "## Where the time goes (py-spy, product worker, S1)", ""]
    base_prof = HERE / "baseline" / "profile.txt"
    if base_prof.exists() and not args.save_baseline:
        lines += ["Before (baseline):", "", "```", base_prof.read_text().rstrip(), "```", ""]
    if profile_text:
        lines += ["Now:" if not args.save_baseline else "Baseline:", "", "```", profile_text.rstrip(), "```"]
    else:
        lines += ["(no profile in this run: `--profile`)"]
    lines += ["", "## Machine and versions", "",
              f"- {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
              f"open files limit {m['nofile']}",
              f"- product {v.get('product_commit')}: " + ", ".join(f"{k} {x}" for k, x in v["python"].items()),
              f"- Node {v['node']}; Node peer: " + ", ".join(f"{k} {x}" for k, x in v["node_peer"].items()),
              "- load generator: " + ", ".join(f"{k} {x}" for k, x in v["loadgen"].items()),
              f"- PostgreSQL {v['postgresql']}", "",
              "## Exact commands", "", "```", f"# {meta['argv']}"]
    lines += [f"# {k}\n{c}" for k, c in sorted(meta["commands"].items())]
    lines += ["```", ""]
    (results_dir / "RESULTS.md").write_text("\n".join(lines))
    log(f"wrote {results_dir / 'RESULTS.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 round, short phases, S1 and S2 only")
    ap.add_argument("--only", default=",".join(TARGETS), help="targets, comma list: product,floor,node")
    ap.add_argument("--scenarios", default=None,
                    help=f"comma list of {', '.join(SCENARIOS)} (default: all; quick: S1,S2)")
    ap.add_argument("--duration", type=float, help="send phase seconds (every scenario)")
    ap.add_argument("--drain", type=float, help="seconds to wait for the last deliveries")
    ap.add_argument("--profile", action="store_true", help="one more product S1 run under py-spy")
    ap.add_argument("--profile-phase", choices=("send", "connect"), default="send",
                    help="the phase the profile samples: the send phase, or connect and join (5 s)")
    ap.add_argument("--product-dir", default=str(REPO), help="the checkout of the product to measure")
    ap.add_argument("--product-venv", help="its virtualenv (default: <product-dir>/.venv, else this one's)")
    ap.add_argument("--node-dir", help="the Node peer (default: shared/peers/node-seed beside the repo)")
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG", PG_DEFAULT), help="PostgreSQL server URL, no database")
    ap.add_argument("--port-base", type=int, default=9710)
    ap.add_argument("--out-dir", help="raw results (default bench/out/<stamp>)")
    ap.add_argument("--write-results", action="store_true",
                    help="write bench/RESULTS.md etc. even for a partial run (by default only a complete one does)")
    ap.add_argument("--save-baseline", action="store_true", help="keep the medians and profile in bench/baseline/")
    ap.add_argument("--report-from", metavar="RESULTS_JSON",
                    help="only write RESULTS.md (and the chart) again from a results.json, beside it")
    args = ap.parse_args()
    if args.report_from:
        src = Path(args.report_from)
        doc = json.loads(src.read_text())
        meta = doc["meta"]
        args.quick = "--quick" in meta["argv"].split()
        args.save_baseline = src.resolve().parent == (HERE / "baseline").resolve()
        args.only = [t for t in TARGETS if any(r["target"] == t for r in doc["runs"])]
        prof = src.parent / "profile.txt" if args.save_baseline else HERE / "profiles" / "product-S1.txt"
        write_report(args, doc["runs"], medians(doc["runs"]), meta, prof.read_text() if prof.exists() else None,
                     src.parent)
        return
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    if bad := set(args.only) - set(TARGETS):
        ap.error(f"unknown target(s) {bad}")
    default_sc = "S1,S2" if args.quick else ",".join(SCENARIOS)
    names = [s.strip() for s in (args.scenarios or default_sc).split(",") if s.strip()]
    if bad := set(names) - set(SCENARIOS):
        ap.error(f"unknown scenario(s) {bad}")
    if args.quick:
        args.rounds = 1

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the servers and the load generator inherit it
    if not (HERE / "loadgen" / "node_modules" / "socket.io-client").exists():
        run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE / "loadgen")

    bench = Bench(args)
    log(f"product {bench.product_dir} (venv {bench.venv}); out {bench.out}")
    results: list[dict] = []
    t0 = time.monotonic()
    try:
        main_sc = [n for n in names if SCENARIOS[n].get("main")]
        for rnd in range(1, args.rounds + 1):
            for name in main_sc:
                for target in args.only:
                    if target in SCENARIOS[name]["targets"]:
                        if r := bench.run_one(name, target, rnd):
                            results.append(r)
        for name in (n for n in names if not SCENARIOS[n].get("main")):
            for target in args.only:
                if target in SCENARIOS[name]["targets"]:
                    if r := bench.run_one(name, target, 1):
                        results.append(r)
        profile_text = None
        if args.profile and "product" in args.only:
            bench.profile_raw = None
            bench.run_one("S1", "product", 0, profile=True)
            raw = getattr(bench, "profile_raw", None)
            if raw and raw.exists():
                label = "baseline" if args.save_baseline else "product"
                phase = "" if args.profile_phase == "send" else f"-{args.profile_phase}"
                profile_text = summarize_profile(raw, f"Profile: {label} ({bench.product_dir.name}, "
                                                      f"{time.strftime('%Y-%m-%d')})", args.profile_phase)
                (HERE / "profiles").mkdir(exist_ok=True)
                (HERE / "profiles" / f"{label}-S1{phase}.txt").write_text(profile_text)
                log(f"profile summary in bench/profiles/{label}-S1{phase}.txt")
                if phase:
                    profile_text = None  # RESULTS.md shows the send phase's
    finally:
        shutil.rmtree(bench.sqlite_dir, ignore_errors=True)
    log(f"all runs done in {(time.monotonic() - t0) / 60:.1f} min")

    med = medians(results)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "argv": " ".join(["bench/run.py", *sys.argv[1:]]),
            "rounds": args.rounds, "scenarios": names, "machine": machine(),
            "versions": versions(str(bench.venv / "bin" / "python"), bench.pg, node_peer_source(args.node_dir),
                                 bench.product_dir),
            "commands": bench.commands}
    doc = {"meta": meta, "medians": med, "runs": results}
    (bench.out / "results.json").write_text(json.dumps(doc, indent=1))
    results_dir = bench.out
    if args.save_baseline:
        (HERE / "baseline").mkdir(exist_ok=True)
        (HERE / "baseline" / "results.json").write_text(json.dumps(doc, indent=1))
        if profile_text:
            (HERE / "baseline" / "profile.txt").write_text(profile_text)
        log("baseline kept in bench/baseline/")
    elif args.write_results or (not args.quick and not args.scenarios and args.only == list(TARGETS)
                                and bench.product_dir == REPO):  # a complete run of this checkout
        results_dir = HERE
        (HERE / "results.json").write_text(json.dumps(doc, indent=1))
    write_report(args, results, med, meta, profile_text, results_dir)
    if args.save_baseline:
        shutil.copy(results_dir / "RESULTS.md", HERE / "baseline" / "RESULTS.md")
    print("\n".join(figures_table(med)))


if __name__ == "__main__":
    main()
