#!/usr/bin/env python3
"""Bytes per stream by allocation site, from two heaptrack runs of the same workload at N and 2N
streams (scripts/bench.sh profile). Each input is heaptrack_print's list of leaks: the bytes
still allocated when the server was killed with its streams open and idle. The difference between the runs, divided by the extra streams, is what one more stream
costs; start-up and one-off allocations cancel out.

usage: heap_sites.py LABEL STREAMS_SMALL LEAKS_SMALL STREAMS_BIG LEAKS_BIG
"""

import re
import sys
from collections import defaultdict

# Frames that only allocate on behalf of their caller: the cost is charged to the first frame
# below them that belongs to one of these crates.
OWNERS = {
    "hyper", "hyper_util", "h2", "rustls", "tokio_rustls", "tokio", "tokio_util", "sselab",
    "axum", "axum_core", "axum_server", "tower", "tower_http", "http", "async_stream",
    "futures_util", "prometheus", "tracing", "tracing_subscriber", "quinn", "h3",
}

# What each module is, in the words; the first prefix that matches wins.
CATEGORIES = [
    ("hyper::proto::h1::io", "hyper HTTP/1.1 read/write buffers"),
    ("hyper::proto::h1", "hyper HTTP/1.1 connection state"),
    ("hyper::proto::h2", "hyper HTTP/2 glue (per-stream task, body)"),
    ("hyper", "hyper, other"),
    ("hyper_util", "hyper-util (auto connection, executor)"),
    ("h2::proto::streams", "h2 per-stream state (store, buffers)"),
    ("h2::codec", "h2 framing buffers (per connection)"),
    ("h2::hpack", "h2 HPACK tables (per connection)"),
    ("h2", "h2, other"),
    ("rustls", "rustls record buffers and state"),
    ("tokio_rustls", "tokio-rustls"),
    ("tokio::runtime::task", "tokio task cells (the spawned futures)"),
    ("tokio::time", "tokio timers"),
    ("tokio::sync", "tokio sync (Notify, semaphores, watch)"),
    ("tokio::net", "tokio sockets (registration)"),
    ("tokio::runtime::io", "tokio sockets (registration)"),
    ("tokio_util::sync", "cancellation tokens"),
    ("tokio", "tokio, other"),
    ("sselab::sse", "sselab SSE body generator, guard, registry"),
    ("sselab::pubsub", "sselab hub: subscriber entry, queue, registration"),
    ("sselab::http", "sselab handlers (request facts, router state)"),
    ("sselab::server", "sselab per-connection facts and limits"),
    ("sselab", "sselab, other"),
    ("axum", "axum router, extractors, request parts"),
    ("tower", "tower layers"),
    ("http", "http request/response parts (headers, extensions)"),
    ("async_stream", "async-stream channel"),
    ("futures_util", "futures-util"),
]


def plain(name):
    """`<a::B<T> as c::D>::f<U>` -> `a::B::f`: the owner's path without generics."""
    name = name.strip()
    if name.startswith("<"):
        depth, cut = 0, None
        for i, c in enumerate(name):
            depth += c == "<"
            depth -= c == ">"
            if depth == 0:
                cut = i
                break
        if cut is not None:
            inner, rest = name[1:cut], name[cut + 1:]
            depth, self_end = 0, len(inner)
            for i in range(len(inner)):
                depth += inner[i] == "<"
                depth -= inner[i] == ">"
                if depth == 0 and inner.startswith(" as ", i):
                    self_end = i
                    break
            name = inner[:self_end] + rest
    out, depth = [], 0
    for c in name:
        if c == "<":
            depth += 1
        elif c == ">":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(c)
    return "".join(out).replace("&", "").replace("mut ", "").replace("dyn ", "").strip()


def crate(frame):
    return frame.split("::", 1)[0]


UNITS = {"B": 1, "K": 1000, "M": 1000**2, "G": 1000**3}  # heaptrack_print's are powers of 1000
RECORD = re.compile(r"^(-?[\d.]+)([BKMG]) leaked over (\d+) calls? from")
LEGACY = [("$LT$", "<"), ("$GT$", ">"), ("$C$", ","), ("$u20$", " "), ("$RF$", "&"), ("$BP$", "*"),
          ("$u7b$", "{"), ("$u7d$", "}"), ("$u27$", "'"), ("$u5b$", "["), ("$u5d$", "]"),
          ("$u3b$", ";"), ("$u2b$", "+"), ("$u22$", '"'), ("..", "::")]
REGISTRY = re.compile(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d+\.\d+\.\d+[^/]*/src/(.*)\.rs$")


def frame_name(name, path):
    """A frame's function with its crate and module: from the (demangled) symbol when it has
    them, else from its source file."""
    for old, new in LEGACY:
        name = name.replace(old, new)
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    if "::" in plain(name):
        return plain(name)
    m = REGISTRY.search(path or "")
    if m:
        module = m.group(2).replace("/mod", "").replace("/lib", "").replace("/", "::")
        return f"{m.group(1).replace('-', '_')}::{module}::{plain(name)}"
    m = re.search(r"/wt-[^/]+/src/(.*)\.rs$|^src/(.*)\.rs$", path or "")
    if m and (path or "").startswith("/"):
        return "sselab::" + (m.group(1) or "").replace("/mod", "").replace("/", "::") + "::" + plain(name)
    return plain(name)


def read(path):
    """{(owner frame, caller outside the owner's crate): bytes} for one run, from
    `heaptrack_print --print-leaks --merge-backtraces=0`: each record is the bytes live at
    the end and its backtrace, allocation first."""
    sites = defaultdict(int)
    records, current = [], None
    with open(path) as text:
        for line in text:
            m = RECORD.match(line)
            if m:
                current = [float(m.group(1)) * UNITS[m.group(2)], []]
                records.append(current)
            elif current is None or not line.strip():
                current = None if not line.strip() else current
            elif line.startswith("  ") and not line.startswith("   "):
                current[1].append([line.strip(), None])
            elif line.startswith("    at ") and current[1]:
                current[1][-1][1] = line[7:].strip().rsplit(":", 1)[0]
    for cost, frames in records:
        names = [frame_name(name, where) for name, where in frames]
        owned = [f for f in names if crate(f) in OWNERS]
        owner = owned[0] if owned else "(no Rust frame: " + (names[0] if names else "?")[:40] + ")"
        caller = next((f for f in owned[1:] if crate(f) != crate(owner)), "")
        sites[(owner, caller)] += cost
    return sites


def category(frame):
    for prefix, name in CATEGORIES:
        if frame == prefix or frame.startswith(prefix + "::"):
            return name
    return "other: " + "::".join(frame.split("::")[:2])


def main():
    label, n_small, small, n_big, big = sys.argv[1:6]
    extra = int(n_big) - int(n_small)
    a, b = read(small), read(big)
    per = {k: (b.get(k, 0) - a.get(k, 0)) / extra for k in set(a) | set(b)}
    total = sum(per.values())
    by_cat = defaultdict(float)
    for (owner, _), v in per.items():
        by_cat[category(owner)] += v
    print(f"{total:.0f} B of heap per stream: {label} "
          f"(live bytes at {n_big} streams minus at {n_small}, / {extra})")
    print(f"  {'bytes':>7}  by what owns the allocation")
    for name, v in sorted(by_cat.items(), key=lambda kv: -abs(kv[1])):
        if abs(v) >= 8:
            print(f"  {v:7.0f}  {name}")
    print(f"  {'bytes':>7}  top sites (allocating frame  <-  its caller in another crate)")
    for (owner, caller), v in sorted(per.items(), key=lambda kv: -abs(kv[1]))[:14]:
        if abs(v) >= 8:
            print(f"  {v:7.0f}  {owner[:70]}  <-  {caller[:60]}")


if __name__ == "__main__":
    main()
