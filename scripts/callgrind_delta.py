#!/usr/bin/env python3
"""Instructions per delivery, from two callgrind runs of the server that differ only in how
many events were published (scripts/bench.sh instructions): the difference in instructions
divided by the difference in deliveries, in total and per function (inclusive), so what is
left is what a delivery costs, without start-up, connection set-up and shutdown.

usage: callgrind_delta.py DELIVERIES_SMALL ANNOTATED_SMALL DELIVERIES_BIG ANNOTATED_BIG TOP KIND
where ANNOTATED_* are `callgrind_annotate` outputs, inclusive or self (KIND says which).
"""

import re
import sys

# What a function's own instructions are spent on, for the self-cost summary: the first
# prefix of the function's owner (`<a::B as c::D>::f` is owned by `a::B`) that matches.
CATEGORIES = [
    (("malloc", "free", "cfree", "realloc", "calloc", "_int_", "malloc_", "tcache", "unlink_chunk",
      "__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rdl_", "__libc_malloc", "__libc_free",
      "alloc::alloc", "alloc::raw_vec"), "allocator (glibc malloc/free)"),
    (("__memcpy", "__memmove", "__memset", "memcpy", "memmove", "memset", "__memcmp", "__memchr",
      "__strlen", "bcmp"), "memcpy/memset (libc)"),
    (("ring_core", "ring::", "aes_", "gcm_", "chacha", "poly1305"), "TLS crypto (ring)"),
    (("rustls::", "tokio_rustls::", "axum_server::tls"), "rustls records, tokio-rustls"),
    (("h2::hpack",), "h2 HPACK"),
    (("h2::codec", "h2::frame"), "h2 framing (codec)"),
    (("h2::",), "h2 streams, flow control, prioritize"),
    (("hyper::proto::h2",), "hyper HTTP/2 glue (body pipe)"),
    (("hyper::", "hyper_util::"), "hyper, other"),
    (("tokio::sync",), "tokio sync (Notify, mutex)"),
    (("tokio_util::sync",), "cancellation tokens (tokio-util)"),
    (("tokio::time",), "tokio timers"),
    (("tokio::runtime::io", "tokio::io", "tokio::net", "mio::"), "tokio I/O driver"),
    (("tokio::",), "tokio scheduler, tasks, wake-ups"),
    (("epoll", "__GI_epoll", "writev", "__writev", "write", "__libc_write", "read", "__libc_read",
      "recv", "send", "__libc_recv", "__libc_send", "syscall", "__GI___", "futex", "__futex"),
     "system calls (user side)"),
    (("pthread_", "__pthread", "lll_", "std::sys::sync", "parking_lot", "__lll"), "locks (pthread, futex)"),
    (("sselab::pubsub",), "sselab pub/sub (publish, queues)"),
    (("sselab::sse",), "sselab SSE driver, guard, counters"),
    (("sselab::",), "sselab, other"),
    (("async_stream::", "futures_util::", "futures_core::", "tokio_stream::"), "stream combinators"),
    (("axum::", "axum_core::", "tower::", "tower_http::", "http_body", "http::"), "axum, tower, http"),
    (("bytes::",), "bytes"),
    (("core::", "alloc::", "std::"), "Rust core/alloc/std (drops, Arc, fmt)"),
]

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)(\s+\[[^\]]*\])?$")


def read(path):
    costs, total = {}, None
    with open(path) as annotated:
        for line in annotated:
            m = LINE.match(line)
            if not m:
                continue
            cost, name = int(m.group(1).replace(",", "")), m.group(2)
            if name.startswith("PROGRAM TOTALS"):
                total = cost
                continue
            # "file:function": the same function appears once per source file inlined into
            # it; their costs add up to the function's.
            name = re.sub(r"^[^:\s]*:(?!:)", "", name)
            costs[name] = costs.get(name, 0) + cost
    return total, costs


def owner(name):
    """`<a::B<T> as c::D>::f` -> `a::B<T>`; anything else as it is."""
    if name.startswith("<"):
        depth = 0
        for i, c in enumerate(name):
            depth += c == "<"
            depth -= c == ">"
            if depth == 1 and name.startswith(" as ", i):
                return name[1:i]
            if depth == 0:
                return name[1:i]
    return name


def category(name):
    own = owner(name)
    if "core::fmt" in name or own.startswith(("tracing", "nu_ansi_term", "alloc::fmt")):
        return "formatting, logging (fmt, tracing)"
    if own.startswith("_dl_"):
        return "dynamic loader (start-up)"
    for prefixes, what in CATEGORIES:
        if own.startswith(prefixes):
            return what
    return "other"


def main():
    d_small, small, d_big, big = sys.argv[1:5]
    top, kind = int(sys.argv[5]), sys.argv[6]
    deliveries = int(d_big) - int(d_small)
    t_small, a = read(small)
    t_big, b = read(big)
    per = {k: (b.get(k, 0) - a.get(k, 0)) / deliveries for k in set(a) | set(b)}
    print(f"instructions per delivery  {(t_big - t_small) / deliveries:.0f}  "
          f"(({t_big:,} - {t_small:,}) / ({d_big} - {d_small}) deliveries)")
    print(f"  {'instr':>7}  {kind} per delivery, by function")
    for name, v in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {v:7.0f}  {name[:150]}")
    if kind == "self":
        by_cat = {}
        for name, v in per.items():
            by_cat[category(name)] = by_cat.get(category(name), 0) + v
        print(f"  {'instr':>7}  self per delivery, by what the function is")
        for what, v in sorted(by_cat.items(), key=lambda kv: -kv[1]):
            if abs(v) >= 1:
                print(f"  {v:7.0f}  {what}")


if __name__ == "__main__":
    main()
