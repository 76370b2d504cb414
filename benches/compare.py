#!/usr/bin/env python3
"""sockbench against peer tools, side by side on loopback (issue 11's targets).

Builds the release binary (`cargo build --release`, under
/tmp/sockbench-cargo.lock when that file exists), then runs each measure for
sockbench and for a peer, alternating which goes first, for several rounds:

  a  TCP ingest: SIZE bytes into `listen tcp --once --quiet`
     vs `socat -b65536 -u TCP-LISTEN:PORT,bind=127.0.0.1 OPEN:/dev/null`
  b  TCP echo round trip: `listen tcp --echo --once --quiet`
     vs a python asyncio echo server
  c  echo to a client that never reads: bytes taken and RSS above idle
  d  UDP: DATAGRAMS x 64 bytes from one sender into `listen udp --quiet`
     vs a plain python recvfrom loop
  e  CLIENTS concurrent echo clients: RSS and descriptors per connection

Everything runs on 127.0.0.1. Peak RSS is each child's own ru_maxrss (wait4).
Standard library only. `benches/compare.sh --help` lists the flags.
"""

import argparse
import atexit
import collections
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = "/tmp/sockbench-cargo.lock"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# ---------------------------------------------------------------- helpers


def parse_size(text):
    """`4G`, `256M`, `64K`, `1000` (binary units) as bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (like 4G, 256M, 64K)")
    unit = {"": 1, "k": KiB, "m": MiB, "g": GiB}[m.group(2).lower()]
    value = int(float(m.group(1)) * unit)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a size must be positive: {text!r}")
    return value


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def size_text(n):
    if n is None:
        return "-"
    if n >= GiB:
        return f"{n / GiB:.2f} GiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= KiB:
        return f"{n / KiB:.0f} KiB"
    return f"{n} B"


def secs_text(s):
    return "-" if s is None else f"{s:.2f} s"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def maximum(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


class StepFailed(Exception):
    """One run of one tool did not complete; the round records why."""


class Child:
    """A child process with its output collected by threads, reaped with wait4
    so its own peak RSS (ru_maxrss) is known."""

    live = []

    def __init__(self, name, argv, stdin=subprocess.DEVNULL):
        self.name = name
        self.argv = argv
        self.lines = collections.deque(maxlen=400)
        self.cond = threading.Condition()
        self.returncode = None
        self.peak_rss = None
        # The child's ru_maxrss counts the pages it shared with this process
        # before exec; it is only believed above this process's own RSS.
        self.polled_hwm = 0
        self.spawn_rss = own_rss()
        self.p = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        self.pid = self.p.pid
        Child.live.append(self)
        self.readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                        for stream in (self.p.stdout, self.p.stderr)]
        for reader in self.readers:
            reader.start()
        threading.Thread(target=self._poll_hwm, daemon=True).start()

    def _poll_hwm(self):
        """Samples VmHWM (the peak RSS since exec) until the child is reaped."""
        while self.returncode is None:
            hwm = self.status_kib("VmHWM")
            if hwm is None:
                return
            self.polled_hwm = max(self.polled_hwm, hwm)
            time.sleep(0.01)

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        stream.close()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout):
        """The first output line matching `pattern` (a regex), waiting at most `timeout`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or not any(r.is_alive() for r in self.readers):
                    break  # out of time, or the child closed its output (exited)
                self.cond.wait(min(left, 0.2))
        raise StepFailed(f"{self.name}: no line matching {pattern!r} within {timeout:.0f} s; "
                         f"last output: {list(self.lines)[-3:]}")

    def find_line(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            for line in reversed(self.lines):
                m = rx.search(line)
                if m:
                    return m
        return None

    def alive(self):
        return self.returncode is None and not self._reap(os.WNOHANG)

    def _reap(self, flags):
        if self.returncode is not None:
            return True
        try:
            pid, status, usage = os.wait4(self.pid, flags)
        except ChildProcessError:
            self.returncode = -1
            return True
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        maxrss = usage.ru_maxrss * KiB  # Linux reports KiB
        believed = maxrss if maxrss > self.spawn_rss + MiB else 0
        self.peak_rss = max(self.polled_hwm, believed) or None
        self.p.returncode = self.returncode  # so subprocess never waits on it again
        if self in Child.live:
            Child.live.remove(self)
        return True

    def wait(self, timeout):
        """Waits for the child to exit by itself; True if it did in time."""
        deadline = time.monotonic() + timeout
        while not self._reap(os.WNOHANG):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        # The output threads finish once the pipes close.
        for reader in self.readers:
            reader.join(2)
        return True

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Asks the child to stop with `sig`; kills it if it has not within `timeout`."""
        if self.returncode is not None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        if not self.wait(timeout):
            self.kill()

    def kill(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(10)

    def status_kib(self, field):
        """A field of /proc/PID/status (VmRSS, VmHWM) in bytes, or None."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * KiB
        except OSError:
            pass
        return None

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None


def own_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * KiB
    except OSError:
        pass
    return 0


def cleanup():
    for child in list(Child.live):
        child.kill()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


atexit.register(cleanup)
for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, on_signal)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_listening(port):
    """Whether a socket listens on 127.0.0.1:port (from /proc/net/tcp, so
    checking does not take a one-connection server's only accept)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def wait_listening(child, port, timeout):
    deadline = time.monotonic() + timeout
    while not tcp_listening(port):
        if not child.alive():
            raise StepFailed(f"{child.name} exited ({child.returncode}): {list(child.lines)[-3:]}")
        if time.monotonic() > deadline:
            raise StepFailed(f"{child.name} did not listen on port {port} within {timeout:.0f} s")
        time.sleep(0.02)


SUMMARY = re.compile(
    r"summary: sent (\d+) payloads \((\d+) bytes\), received (\d+) payloads \((\d+) bytes\)"
)


def summary_of(child):
    m = child.find_line(SUMMARY.pattern)
    if not m:
        return None
    return {"sent": int(m.group(1)), "sent_bytes": int(m.group(2)),
            "received": int(m.group(3)), "received_bytes": int(m.group(4))}


def sockbench_listen(cfg, proto, *extra):
    child = Child("sockbench", [cfg.bin, "listen", proto, "127.0.0.1:0", "--quiet", *extra])
    m = child.wait_line(r"listening on 127\.0\.0\.1:(\d+)", cfg.timeout)
    return child, int(m.group(1))


# A python asyncio echo server: the Protocol form, with flow control (a full
# write buffer pauses reading, as python's streams do). Raises its own
# descriptor limit, as servers do. Prints its port.
PY_ECHO = r"""
import asyncio, resource, signal
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)
    def pause_writing(self): self.t.pause_reading()
    def resume_writing(self): self.t.resume_reading()
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=4096)
    print("port", server.sockets[0].getsockname()[1], flush=True)
    stop = loop.create_future()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    await stop
asyncio.run(main())
"""


def python_echo(cfg):
    child = Child("python echo", [sys.executable, "-c", PY_ECHO])
    m = child.wait_line(r"^port (\d+)$", cfg.timeout)
    return child, int(m.group(1))


# A plain python recvfrom loop (blocking); prints its count when told to stop.
PY_UDP = r"""
import signal, socket
class Stop(Exception):
    pass
def stop(*_):
    raise Stop
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
count = nbytes = 0
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print("port", s.getsockname()[1], flush=True)
try:
    while True:
        data, _ = s.recvfrom(65536)
        count += 1
        nbytes += len(data)
except Stop:
    pass
print("received", count, nbytes, flush=True)
"""

# Many concurrent echo clients: each connects, sends a line, reads it back and
# stays open until told (a line on stdin).
PY_CLIENTS = r"""
import asyncio, resource, sys
n, port, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard < n + 64:
    print("note: the open-files limit", hard, "is below", n + 64, flush=True)
async def one(i, gate, held):
    async with gate:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
            line = b"client %d\n" % i
            w.write(line)
            got = await asyncio.wait_for(r.readexactly(len(line)), timeout)
            if got != line:
                w.close()
                return False
            held.append(w)
            return True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            return False
async def main():
    gate = asyncio.Semaphore(200)
    held = []
    results = await asyncio.gather(*(one(i, gate, held) for i in range(n)))
    print("ready", sum(results), n - sum(results), flush=True)
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), 4 * timeout)
    for w in held:
        w.close()
    print("done", flush=True)
asyncio.run(main())
"""

# ---------------------------------------------------------------- measures


def send_stream(port, size, timeout):
    """Connects and sends `size` zero bytes, then closes; returns the seconds from connect."""
    chunk = memoryview(bytes(MiB))
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        left = size
        while left > 0:
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n
    return t0


def measure_ingest(cfg, tool):
    size = cfg.size
    if tool == "sockbench":
        child, port = sockbench_listen(cfg, "tcp", "--once")
    else:
        port = free_port()
        child = Child("socat", ["socat", "-b65536", "-u",
                                f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr", "OPEN:/dev/null"])
        wait_listening(child, port, cfg.timeout)
    try:
        t0 = send_stream(port, size, cfg.timeout)
        if not child.wait(cfg.timeout):
            raise StepFailed(f"{child.name} did not exit within {cfg.timeout:.0f} s after the sender closed")
        took = time.monotonic() - t0
    finally:
        child.stop()
    result = {"time": took, "rss": child.peak_rss}
    if tool == "sockbench":
        s = summary_of(child)
        result["counted"] = s["received_bytes"] if s else None
        result["note"] = (f"summary counted {s['received_bytes']} of {size} bytes" if s
                          else "no summary line")
    return result


def measure_echo(cfg, tool):
    size = cfg.echo_size
    if tool == "sockbench":
        child, port = sockbench_listen(cfg, "tcp", "--echo", "--once")
    else:
        child, port = python_echo(cfg)
    failure = []

    def writer(sock):
        try:
            chunk = memoryview(bytes(MiB))
            left = size
            while left > 0:
                n = min(left, len(chunk))
                sock.sendall(chunk[:n])
                left -= n
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            failure.append(f"send: {e}")

    try:
        buf = bytearray(MiB)
        got = 0
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=cfg.timeout) as s:
            w = threading.Thread(target=writer, args=(s,), daemon=True)
            w.start()
            try:
                while got < size:
                    n = s.recv_into(buf)
                    if n == 0:
                        break
                    got += n
            except OSError as e:
                failure.append(f"receive: {e}")
            took = time.monotonic() - t0
            w.join(cfg.timeout)
        if tool == "sockbench":
            if not child.wait(cfg.timeout):
                failure.append("sockbench did not exit after the client closed")
    finally:
        child.stop(signal.SIGTERM if tool != "sockbench" else signal.SIGINT)
    result = {"time": took, "rss": child.peak_rss, "echoed": got}
    notes = [] if got == size else [f"echoed {got} of {size} bytes"]
    notes += failure
    if notes:
        result["note"] = "; ".join(notes)
    return result


def measure_stall(cfg, tool):
    size = cfg.offer_size
    if tool == "sockbench":
        child, port = sockbench_listen(cfg, "tcp", "--echo")
    else:
        child, port = python_echo(cfg)
    try:
        time.sleep(0.3)
        idle = child.status_kib("VmRSS")
        chunk = memoryview(bytes(256 * KiB))
        offered = 0
        deadline = time.monotonic() + cfg.timeout
        with socket.create_connection(("127.0.0.1", port), timeout=cfg.timeout) as s:
            s.setblocking(False)
            while offered < size and time.monotonic() < deadline:
                try:
                    offered += s.send(chunk[: min(len(chunk), size - offered)])
                except BlockingIOError:
                    _, writable, _ = select.select([], [s], [], cfg.stall)
                    if not writable:
                        break  # no room for `stall` seconds: the server stopped reading
            time.sleep(0.5)  # let the server take what is in flight
            rss = child.status_kib("VmRSS")
            hwm = child.status_kib("VmHWM")
            # Close with a reset: the unread echo is dropped at once.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        child.stop(signal.SIGINT if tool == "sockbench" else signal.SIGTERM)
    above = None if hwm is None or idle is None else hwm - idle
    return {"offered": offered, "idle": idle, "rss": rss, "above": above,
            "note": f"took {size_text(offered)} of {size_text(size)} before it stopped reading"
            if offered < size else f"took all {size_text(size)} without pushing back"}


def measure_udp(cfg, tool):
    count = cfg.datagrams
    if tool == "sockbench":
        child, port = sockbench_listen(cfg, "udp")
    else:
        child = Child("python recvfrom", [sys.executable, "-c", PY_UDP])
        port = int(child.wait_line(r"^port (\d+)$", cfg.timeout).group(1))
    try:
        payload = b"d" * 64
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("127.0.0.1", port))
            t0 = time.monotonic()
            sent = 0
            send = s.send
            for _ in range(count):
                try:
                    send(payload)
                    sent += 1
                except OSError:  # a full send buffer (ENOBUFS) or a refusal
                    pass
            took = time.monotonic() - t0
        time.sleep(cfg.drain)
    finally:
        child.stop(signal.SIGINT if tool == "sockbench" else signal.SIGTERM)
    if tool == "sockbench":
        s = summary_of(child)
        received = s["received"] if s else None
    else:
        m = child.find_line(r"^received (\d+) (\d+)$")
        received = int(m.group(1)) if m else None
    result = {"sent": sent, "rate": sent / took if took > 0 else None, "received": received,
              "share": None if received is None else received / count, "rss": child.peak_rss}
    if received is None:
        result["note"] = "no count printed"
    return result


def measure_clients(cfg, tool):
    n = cfg.clients
    if tool == "sockbench":
        child, port = sockbench_listen(cfg, "tcp", "--echo")
    else:
        child, port = python_echo(cfg)
    clients = None
    try:
        time.sleep(0.3)
        idle_rss, idle_fds = child.status_kib("VmRSS"), child.fds()
        clients = Child("clients", [sys.executable, "-c", PY_CLIENTS, str(n), str(port),
                                    str(cfg.timeout)], stdin=subprocess.PIPE)
        m = clients.wait_line(r"^ready (\d+) (\d+)$", 4 * cfg.timeout)
        ok, failed = int(m.group(1)), int(m.group(2))
        time.sleep(0.5)
        rss, fds = child.status_kib("VmRSS"), child.fds()
        try:
            clients.p.stdin.write(b"close\n")
            clients.p.stdin.close()
        except OSError:
            pass
        clients.wait(cfg.timeout)
    finally:
        if clients:
            clients.kill()
        child.stop(signal.SIGINT if tool == "sockbench" else signal.SIGTERM)
    per_conn = None if ok == 0 or fds is None or idle_fds is None else (fds - idle_fds) / ok
    result = {"connected": ok, "failed": failed, "rss": rss, "idle": idle_rss,
              "fds": fds, "fds_per_conn": per_conn, "peak": child.peak_rss,
              "rss_per_conn": None if ok == 0 or rss is None else (rss - idle_rss) / ok}
    if failed:
        result["note"] = f"{failed} of {n} clients failed to connect or get their echo"
    return result


# ---------------------------------------------------------------- reports


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def report_rounds(rows, columns):
    """Prints one line per round per tool."""
    for tool, rnd, res in rows:
        if "error" in res:
            print(f"    round {rnd} {tool:<10} failed: {res['error']}")
            continue
        parts = [f"{label} {fmt(res.get(key))}" for label, key, fmt in columns]
        note = f"  ({res['note']})" if res.get("note") else ""
        print(f"    round {rnd} {tool:<10} " + ", ".join(parts) + note)


def collect(rows, tool, key):
    return [r.get(key) for t, _, r in rows if t == tool and "error" not in r]


def summarise(cfg, key, rows):
    """Prints the per-measure lines and returns summary rows for the final table:
    (measure, sockbench, peer, ratio, target, verdict)."""
    budget = cfg.budget
    out = []
    if key == "a":
        report_rounds(rows, [("time", "time", secs_text), ("peak RSS", "rss", size_text)])
        sb_t, peer_t = median(collect(rows, "sockbench", "time")), median(collect(rows, "peer", "time"))
        sb_rss, peer_rss = maximum(collect(rows, "sockbench", "rss")), maximum(collect(rows, "peer", "rss"))
        counted = collect(rows, "sockbench", "counted")
        ratio = sb_t / peer_t if sb_t and peer_t else None
        all_counted = bool(counted) and all(c == cfg.size for c in counted)
        name = f"{size_text(cfg.size)} TCP ingest"
        out.append((name + ", time", secs_text(sb_t), f"socat {secs_text(peer_t)}",
                    ratio, "≤ 1.5× socat", verdict(None if ratio is None else ratio <= 1.5)))
        out.append((name + ", peak RSS", size_text(sb_rss), f"socat {size_text(peer_rss)}", None,
                    f"≤ budget + 128 MiB = {size_text(budget + 128 * MiB)}",
                    verdict(None if sb_rss is None else sb_rss <= budget + 128 * MiB)))
        out.append((name + ", bytes counted", "all" if all_counted else f"{counted}", "-", None,
                    "every byte", verdict(all_counted if counted else None)))
    elif key == "b":
        report_rounds(rows, [("time", "time", secs_text), ("peak RSS", "rss", size_text)])
        sb_t, peer_t = median(collect(rows, "sockbench", "time")), median(collect(rows, "peer", "time"))
        sb_rss, peer_rss = maximum(collect(rows, "sockbench", "rss")), maximum(collect(rows, "peer", "rss"))
        ratio = sb_t / peer_t if sb_t and peer_t else None
        complete = all(e == cfg.echo_size for e in collect(rows, "sockbench", "echoed"))
        name = f"{size_text(cfg.echo_size)} TCP echo"
        out.append((name + ", time", secs_text(sb_t), f"python {secs_text(peer_t)}", ratio,
                    "≤ 1.2× python asyncio",
                    verdict(None if ratio is None else ratio <= 1.2 and complete)))
        out.append((name + ", peak RSS", size_text(sb_rss), f"python {size_text(peer_rss)}", None,
                    f"≤ {size_text(budget + 128 * MiB)}",
                    verdict(None if sb_rss is None else sb_rss <= budget + 128 * MiB)))
    elif key == "c":
        report_rounds(rows, [("taken", "offered", size_text), ("idle RSS", "idle", size_text),
                             ("RSS", "rss", size_text), ("peak above idle", "above", size_text)])
        sb_above, peer_above = maximum(collect(rows, "sockbench", "above")), maximum(collect(rows, "peer", "above"))
        sb_taken = maximum(collect(rows, "sockbench", "offered"))
        peer_taken = maximum(collect(rows, "peer", "offered"))
        out.append((f"echo, client never reads ({size_text(cfg.offer_size)} offered)",
                    f"took {size_text(sb_taken)}, +{size_text(sb_above)}",
                    f"python took {size_text(peer_taken)}, +{size_text(peer_above)}", None,
                    "RSS < idle + 64 MiB",
                    verdict(None if sb_above is None else sb_above < 64 * MiB)))
    elif key == "d":
        report_rounds(rows, [("sent", "sent", str), ("at", "rate", lambda r: "-" if r is None else f"{r:,.0f}/s"),
                             ("received", "received", str),
                             ("share", "share", lambda s: "-" if s is None else f"{100 * s:.1f} %"),
                             ("peak RSS", "rss", size_text)])
        sb, peer = collect(rows, "sockbench", "share"), collect(rows, "peer", "share")
        sb_min = min([s for s in sb if s is not None], default=None)
        sb_med, peer_med = median(sb), median(peer)
        out.append((f"{cfg.datagrams:,} × 64 B UDP received",
                    "-" if sb_med is None else f"{100 * sb_med:.1f} % (min {100 * sb_min:.1f} %)",
                    "-" if peer_med is None else f"recvfrom {100 * peer_med:.1f} %",
                    sb_med / peer_med if sb_med is not None and peer_med else None,
                    "≥ 97 %", verdict(None if sb_min is None else sb_min >= 0.97)))
    elif key == "e":
        report_rounds(rows, [("connected", "connected", str), ("RSS", "rss", size_text),
                             ("per connection", "rss_per_conn", size_text),
                             ("descriptors per connection", "fds_per_conn",
                              lambda f: "-" if f is None else f"{f:.2f}")])
        sb_rss, peer_rss = maximum(collect(rows, "sockbench", "rss")), maximum(collect(rows, "peer", "rss"))
        sb_fd, peer_fd = maximum(collect(rows, "sockbench", "fds_per_conn")), maximum(collect(rows, "peer", "fds_per_conn"))
        all_in = all(c == cfg.clients for c in collect(rows, "sockbench", "connected"))
        name = f"{cfg.clients:,} echo clients"
        out.append((name + ", RSS", size_text(sb_rss), f"python {size_text(peer_rss)}",
                    sb_rss / peer_rss if sb_rss and peer_rss else None, "≤ 64 MiB",
                    verdict(None if sb_rss is None else sb_rss <= 64 * MiB and all_in)))
        out.append((name + ", descriptors each", "-" if sb_fd is None else f"{sb_fd:.2f}",
                    "-" if peer_fd is None else f"python {peer_fd:.2f}", None, "1",
                    verdict(None if sb_fd is None else sb_fd <= 1.02 and all_in)))
    return out


MEASURES = {
    "a": ("TCP ingest into listen --once --quiet", measure_ingest, "socat"),
    "b": ("TCP echo round trip", measure_echo, None),
    "c": ("echo to a client that never reads", measure_stall, None),
    "d": ("UDP datagrams from one sender", measure_udp, None),
    "e": ("concurrent echo clients", measure_clients, None),
}


def install_socat():
    if shutil.which("socat"):
        return
    apt = shutil.which("apt-get")
    if not apt:
        print("--install: no apt-get here; install socat by hand", file=sys.stderr)
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("--install: apt-get install socat", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        r = subprocess.run(sudo + [apt, "install", "-y", "-q", "socat"], env=env, timeout=600)
        if r.returncode != 0:
            subprocess.run(sudo + [apt, "update", "-q"], env=env, timeout=600)
            subprocess.run(sudo + [apt, "install", "-y", "-q", "socat"], env=env, timeout=600)
    except subprocess.TimeoutExpired:
        print("--install: apt-get took too long", file=sys.stderr)


def build(cfg):
    cmd = ["cargo", "build", "--release"]
    if os.path.exists(LOCK) and shutil.which("flock"):
        cmd = ["flock", LOCK] + cmd
    print("building:", " ".join(cmd), flush=True)
    try:
        r = subprocess.run(cmd, cwd=ROOT, timeout=cfg.build_timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"the release build took more than {cfg.build_timeout} s")
    if r.returncode != 0:
        sys.exit(f"the release build failed ({r.returncode})")


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="benches/compare.sh",
        description="Runs sockbench and peer tools side by side on loopback and checks issue 11's targets.")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and 2 rounds (about a minute and a half), for a smoke run")
    ap.add_argument("--rounds", type=positive_int, help="interleaved rounds (default 3; --quick 2)")
    ap.add_argument("--only", default="abcde", help="which measures, as letters (default abcde)")
    ap.add_argument("--size", type=parse_size, help="(a) bytes to ingest (default 4G; --quick 256M)")
    ap.add_argument("--echo-size", type=parse_size, help="(b) bytes to echo (default 1G; --quick 128M)")
    ap.add_argument("--offer-size", type=parse_size,
                    help="(c) bytes offered to an echo that is never read (default 1G; --quick 256M)")
    ap.add_argument("--datagrams", type=positive_int, help="(d) datagrams (default 300000)")
    ap.add_argument("--clients", type=positive_int, help="(e) concurrent clients (default 5000; --quick 1000)")
    ap.add_argument("--budget", type=parse_size, default=256 * MiB,
                    help="the log budget the RSS targets add to (default 256M)")
    ap.add_argument("--stall", type=float, default=3.0,
                    help="(c) seconds without room to write that mean the server stopped reading (default 3)")
    ap.add_argument("--drain", type=float, default=1.0,
                    help="(d) seconds to wait after the last datagram (default 1)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds any one step may take (default 120)")
    ap.add_argument("--build-timeout", type=int, default=3600, help="seconds the release build may take")
    ap.add_argument("--bin", help="the sockbench binary (default target/release/sockbench)")
    ap.add_argument("--no-build", action="store_true", help="skip cargo build --release")
    ap.add_argument("--install", action="store_true", help="install socat with apt-get if it is missing")
    cfg = ap.parse_args(argv)
    quick = cfg.quick
    cfg.rounds = cfg.rounds or (2 if quick else 3)
    cfg.size = cfg.size or (256 * MiB if quick else 4 * GiB)
    cfg.echo_size = cfg.echo_size or (128 * MiB if quick else GiB)
    cfg.offer_size = cfg.offer_size or (256 * MiB if quick else GiB)
    cfg.datagrams = cfg.datagrams or 300_000
    cfg.clients = cfg.clients or (1000 if quick else 5000)
    bad = set(cfg.only) - set(MEASURES)
    if bad or not cfg.only:
        ap.error(f"--only takes letters from {''.join(MEASURES)}")
    if not cfg.bin:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        if not target.is_absolute():
            target = ROOT / target
        cfg.bin = str(target / "release" / "sockbench")
    return cfg


def main(argv):
    cfg = parse_args(argv)
    if sys.platform != "linux":
        sys.exit("compare.sh reads /proc: it runs on Linux")
    if cfg.install:
        install_socat()
    if not cfg.no_build:
        build(cfg)
    if not os.access(cfg.bin, os.X_OK):
        sys.exit(f"no sockbench binary at {cfg.bin}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"sockbench: {cfg.bin}")
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; open-files limit {soft} (hard {hard}); "
          f"python {sys.version.split()[0]}; {cfg.rounds} rounds{' (quick sizes, not the issue sizes)' if cfg.quick else ''}")
    rows = {k: [] for k in cfg.only}
    socat = shutil.which("socat")
    for rnd in range(1, cfg.rounds + 1):
        for key in cfg.only:
            title, fn, needs = MEASURES[key]
            order = ["sockbench", "peer"] if rnd % 2 else ["peer", "sockbench"]
            for tool in order:
                if tool == "peer" and needs == "socat" and not socat:
                    if rnd == 1:
                        print(f"({key}) socat is not installed: peer skipped "
                              "(install it, or run with --install)", flush=True)
                    continue
                print(f"round {rnd}: ({key}) {title}: {tool} …", flush=True)
                try:
                    res = fn(cfg, tool)
                except (StepFailed, OSError) as e:
                    res = {"error": str(e)}
                    cleanup()
                rows[key].append((tool, rnd, res))
    table = []
    print()
    for key in cfg.only:
        title = MEASURES[key][0]
        print(f"({key}) {title}")
        table += summarise(cfg, key, rows[key])
    print()
    print(f"| measure | sockbench | peer | ratio | target | |")
    print(f"|---|---|---|---|---|---|")
    for name, sb, peer, ratio, target, ok in table:
        r = "-" if ratio is None else f"{ratio:.2f}×"
        print(f"| {name} | {sb} | {peer} | {r} | {target} | {ok} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
