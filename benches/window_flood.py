#!/usr/bin/env python3
"""The window under a TCP echo flood (issue 11's window target), measured.

Runs the release window under a private Xvfb display on
sessions/tcp-echo-pair.ron, presses F5 (Start all), then pushes SIZE bytes
(default 1 GiB) through the window's echo server (127.0.0.1:7007) from a
python client that reads the echo back, and reports:

  - the window's peak resident memory (VmRSS sampled every 100 ms) and its
    memory before the flood;
  - the flood's time (connect to the last echoed byte);
  - the time from the flood's end to the first frame whose totals (the status
    bar's) count every byte, both ways;
  - frame gaps during the flood (median, 95th percentile, largest);
  - click responsiveness: during the flood it clicks the "Sequence" and "Log"
    view tabs in turn and times each click from the xdotool call to the first
    frame that shows the other view.

The window writes one line per frame to $SOCKBENCH_FRAME_LOG (src/app/frame_log.rs);
that file is how the figures are read from outside. Needs Xvfb and xdotool
(`apt-get install xvfb xdotool`). Everything runs on 127.0.0.1, in a
temporary HOME (the autosave and the spill file go there). Standard library only.

  benches/window_flood.sh                    # 1 GiB, target/release/sockbench
  benches/window_flood.sh --size 256M --bin target/debug/sockbench
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PORT = 7007
# Window coordinates (1400x900 screen, default layout) of what is clicked:
# "Start all" (when F5 did not start the endpoints) and the view tabs.
START_ALL = (45, 37)
TABS = {"sequence": (337, 424), "log": (255, 424)}
VIEW_NUMBER = {"log": 0, "sequence": 1}


def parse_size(text):
    """`1G`, `256M`, `64K`, `1000` (binary units) as bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (like 1G, 256M)")
    value = int(float(m.group(1)) * {"": 1, "k": KiB, "m": MiB, "g": GiB}[m.group(2).lower()])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"a size must be positive: {text!r}")
    return value


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def listening(port):
    """Whether something listens on 127.0.0.1:port (read from /proc, no connect)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            return any(line.split()[1] == want and line.split()[3] == "0A" for line in f.readlines()[1:])
    except OSError:
        return False


class Frames:
    """The window's frame log, read as it grows."""

    def __init__(self, path):
        self.path = path
        self.rows = []
        self.offset = 0
        self.partial = ""

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            p = line.split()
            if len(p) >= 9 and p[0] == "frame":
                self.rows.append({"ms": int(p[1]), "drain_us": int(p[2]), "events": int(p[3]),
                                  "sent": int(p[4]), "received": int(p[5]), "presses": int(p[6]),
                                  "rss": int(p[7]), "view": int(p[8])})

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            for row in self.rows:
                if predicate(row):
                    return row
            time.sleep(0.02)
        return None


def xdotool(display, *args):
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display},
                          capture_output=True, text=True, timeout=10)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=GiB, help="bytes to echo (default 1G)")
    ap.add_argument("--bin", default=str(ROOT / "target/release/sockbench"))
    ap.add_argument("--display", default=":77")
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--clicks", type=int, default=20, help="view-tab clicks during the flood, at most (0: none)")
    ap.add_argument("--budget", type=parse_size, default=256 * MiB,
                    help="the log budget the target adds 256 MiB to (default 256M)")
    cfg = ap.parse_args(argv)
    for tool in ("Xvfb", "xdotool"):
        if not shutil.which(tool):
            sys.exit(f"window_flood needs {tool} (apt-get install xvfb xdotool)")
    if not os.access(cfg.bin, os.X_OK):
        sys.exit(f"no binary at {cfg.bin} (cargo build --release)")
    if listening(PORT):
        sys.exit(f"something already listens on 127.0.0.1:{PORT}")

    work = Path(tempfile.mkdtemp(prefix="sockbench-flood-"))
    procs = []

    def cleanup():
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(work, ignore_errors=True)

    try:
        xvfb = subprocess.Popen(["Xvfb", cfg.display, "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(xvfb)
        time.sleep(1.0)
        if xvfb.poll() is not None:
            sys.exit(f"Xvfb {cfg.display} did not start (display taken? try --display :78)")
        session = work / "tcp-echo-pair.ron"
        shutil.copy(ROOT / "sessions/tcp-echo-pair.ron", session)
        home = work / "home"
        home.mkdir()
        frame_path = work / "frames.log"
        env = {**os.environ, "DISPLAY": cfg.display, "HOME": str(home),
               "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
               "XDG_CONFIG_HOME": str(home / ".config"), "SOCKBENCH_FRAME_LOG": str(frame_path)}
        env.pop("WAYLAND_DISPLAY", None)
        window = subprocess.Popen([cfg.bin, str(session)], env=env, cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=open(work / "stderr.txt", "w"))
        procs.append(window)
        print(f"window pid {window.pid}", flush=True)
        frames = Frames(frame_path)
        if not frames.wait(lambda r: True, 30):
            sys.exit("the window drew no frame within 30 s")
        found = xdotool(cfg.display, "search", "--sync", "--onlyvisible", "--pid", str(window.pid))
        wid = found.stdout.split()[0] if found.stdout.split() else None
        if wid is None:
            sys.exit("xdotool found no window of the process")
        xdotool(cfg.display, "windowsize", wid, "1400", "900")
        xdotool(cfg.display, "windowmove", wid, "0", "0")
        time.sleep(1.0)

        def click(x, y):
            xdotool(cfg.display, "mousemove", "--window", wid, str(x), str(y), "click", "1")

        # F5 starts every endpoint; a click on "Start all" if the key went astray.
        xdotool(cfg.display, "windowfocus", "--sync", wid)
        xdotool(cfg.display, "key", "F5")
        deadline = time.monotonic() + 5
        while not listening(PORT) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not listening(PORT):
            click(*START_ALL)
            deadline = time.monotonic() + 10
            while not listening(PORT) and time.monotonic() < deadline:
                time.sleep(0.05)
        if not listening(PORT):
            sys.exit("the echo server did not listen after Start all")
        time.sleep(1.0)
        idle = rss_kib(window.pid)

        # RSS sampled every 100 ms from outside.
        samples = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                v = rss_kib(window.pid)
                if v is not None:
                    samples.append((v, rss_kib(window.pid, "RssAnon"), rss_kib(window.pid, "RssFile")))
                time.sleep(0.1)

        threading.Thread(target=sampler, daemon=True).start()

        size = cfg.size
        failure = []
        flood_done = threading.Event()

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

        # Clicks during the flood: switch the view and time its first frame.
        clicks = []

        def clicker():
            target = "sequence"
            time.sleep(0.5)
            while not flood_done.is_set() and len(clicks) < cfg.clicks:
                frames.poll()
                t_ms = time.time() * 1000.0
                click(*TABS[target])
                want = VIEW_NUMBER[target]
                row = frames.wait(lambda r, t=t_ms, w=want: r["ms"] >= t and r["view"] == w, 10)
                clicks.append(None if row is None else row["ms"] - t_ms)
                target = "log" if target == "sequence" else "sequence"
                time.sleep(0.3)

        got = 0
        buf = bytearray(MiB)
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", PORT), timeout=cfg.timeout) as s:
            threading.Thread(target=writer, args=(s,), daemon=True).start()
            ct = threading.Thread(target=clicker, daemon=True)
            ct.start()
            try:
                while got < size:
                    n = s.recv_into(buf)
                    if n == 0:
                        break
                    got += n
            except OSError as e:
                failure.append(f"receive: {e}")
            flood_time = time.monotonic() - t0
            end_ms = time.time() * 1000.0
            flood_done.set()
        ct.join(15)
        # Every byte counted both ways by the echo server (the session's client adds none).
        row = frames.wait(lambda r: r["received"] >= got and r["sent"] >= got and got > 0, cfg.timeout)
        catch_up = None if row is None else max(0.0, (row["ms"] - end_ms) / 1000.0)
        time.sleep(1.0)
        stop.set()
        frames.poll()
        top = max(samples, default=None)
        peak = top[0] if top else None
        during = [r for r in frames.rows if r["ms"] <= end_ms and r["ms"] >= end_ms - flood_time * 1000]
        gaps = [b["ms"] - a["ms"] for a, b in zip(during, during[1:])]
        last = frames.rows[-1] if frames.rows else None
    finally:
        cleanup()

    def mib(kib):
        return "-" if kib is None else f"{kib / 1024:.0f} MiB"

    limit_kib = (cfg.budget + 256 * MiB) // KiB
    print(f"echoed {got} of {size} bytes in {flood_time:.2f} s"
          + (f" ({'; '.join(failure)})" if failure else ""))
    print(f"window RSS: idle {mib(idle)}, peak {mib(peak)} (target budget + 256 MiB = {mib(limit_kib)}): "
          + ("met" if peak is not None and peak <= limit_kib else "MISSED")
          + ("" if top is None else f"; at the peak {mib(top[1])} anonymous, {mib(top[2])} file-backed"))
    if last:
        print(f"window counted: sent {last['sent']} bytes, received {last['received']} bytes")
    print("every byte counted " + ("-" if catch_up is None else f"{catch_up:.2f} s") + " after the flood ended"
          + (" (target 2 s): " + ("met" if catch_up is not None and catch_up <= 2.0 else "MISSED")))
    if gaps:
        gaps.sort()
        p95 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.95))]
        print(f"frames during the flood: {len(during)}, gap median {statistics.median(gaps):.0f} ms, "
              f"95th {p95:.0f} ms, largest {gaps[-1]:.0f} ms")
    done = [c for c in clicks if c is not None]
    if clicks:
        print(f"clicks during the flood: {len(clicks)}, took effect {len(done)}; "
              + (f"click to effect median {statistics.median(done):.0f} ms, largest {max(done):.0f} ms "
                 f"(target 500 ms): " + ("met" if max(done) <= 500 and len(done) == len(clicks) else "MISSED")
                 if done else "none took effect"))
    else:
        print("no click was made (the flood ended within half a second)")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main(sys.argv[1:]))
