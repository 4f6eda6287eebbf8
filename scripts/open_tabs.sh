#!/usr/bin/env bash
# Open N tabs of sselab's clock page in one browser and see the connection limit for yourself.
#
#   scripts/open_tabs.sh [--proto h1|h1tls|h2|h3] [--tabs N] [--url URL] [--browser CMD|ENGINE]
#                        [--share leader|worker|none] [--stats-from URL]
#                        [--headless [--settle SECS] [--probe [--probe-timeout SECS]]]
#
#   --proto     h1: plain HTTP/1.1 (:8080)   h1tls: HTTPS, HTTP/1.1 only (:8444)
#               h2: HTTPS with HTTP/2 (:8443, the default)
#               h3: HTTP/3 over QUIC (UDP :8443): the browser gets QUIC forced on for the
#               page's origin (Chromium: --origin-to-force-quic-on and the certificate's SPKI
#               hash, fresh profile; headless Firefox: its HTTP/3 prefs). WebKit has none:
#               WebKitGTK's libsoup links no QUIC library
#   --tabs N    how many tabs (default 10)
#   --url URL   the page to open instead (any sselab listener)
#   --stats-from URL   (h3) the sselab HTTPS (TCP) listener to check and read server_streams
#               from, when it is not on the h3 port's number (default: the page's origin)
#   --share M   add share=M to the page's query: how tabs share one stream (default: none)
#   --browser   the browser command (default: the first of chromium, google-chrome, firefox,
#               xdg-open); with --headless the engine: chromium (default), firefox or webkit
#               (WebKitGTK's MiniBrowser under a private Xvfb: apt-get install webkit2gtk-driver xvfb)
#   --headless  run the same tabs in one headless browser profile and print, as the last
#               line, open=N pending=M protocol=P connections=C server_streams=S
#   --settle SECS   (headless) the longest wait for the tabs to settle (default 10): they are
#               read once every tab ticks, or once none has changed for a second or more
#   --probe     (headless) then time one more tab's navigation and a fetch() of /proto from
#               a tab; the last line gets probe_fetch=… probe_nav=… (ms, or blocked)
#   --probe-timeout SECS   how long a probe waits before it counts as blocked (default 8)
#
# When nothing answers at the default address it starts sselab first (its log goes to
# /tmp/sselab-open-tabs.log); in --headless mode it stops it again afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

proto=h2 tabs=10 url="" browser="" headless=0 share="" probe=() settle=() stats_from=
usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --proto) proto=${2:-}; shift 2 ;;
    --tabs) tabs=${2:-}; shift 2 ;;
    --url) url=${2:-}; shift 2 ;;
    --browser) browser=${2:-}; shift 2 ;;
    --headless) headless=1; shift ;;
    --share) share=${2:-}; shift 2 ;;
    --stats-from) stats_from=${2:-}; shift 2 ;;
    --probe) probe+=(--probe); shift ;;
    --settle) settle=(--settle "${2:-}"); shift 2 ;;
    --probe-timeout) probe+=(--probe-timeout "${2:-}"); shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "open_tabs: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
case $proto in
  h1) default_url=http://127.0.0.1:8080/ ;;
  h1tls) default_url=https://127.0.0.1:8444/ ;;
  h2) default_url=https://127.0.0.1:8443/ ;;
  # The h3 listener's default UDP port has the HTTPS listener's number, as browsers expect.
  h3) default_url=https://127.0.0.1:8443/ ;;
  *) echo "open_tabs: --proto must be h1, h1tls, h2 or h3, got '$proto'" >&2; exit 2 ;;
esac
if [ -n "$stats_from" ] && [ "$proto" != h3 ]; then
  echo "open_tabs: --stats-from is for --proto h3 (the other listeners answer over TCP themselves)" >&2; exit 2
fi
[[ $tabs =~ ^[0-9]+$ ]] && [ "$tabs" -ge 1 ] && [ "$tabs" -le 200 ] ||
  { echo "open_tabs: --tabs must be a number from 1 to 200, got '$tabs'" >&2; exit 2; }
url=${url:-$default_url}
case $share in
  ""|leader|worker|none) ;;
  *) echo "open_tabs: --share must be leader, worker or none, got '$share'" >&2; exit 2 ;;
esac
if [ $((${#probe[@]} + ${#settle[@]})) -gt 0 ] && [ "$headless" -eq 0 ]; then
  echo "open_tabs: --probe, --probe-timeout and --settle need --headless (they time the headless tabs)" >&2; exit 2
fi
if [ "$headless" -eq 1 ]; then
  case ${browser:-chromium} in
    chromium|firefox|webkit) ;;
    *) echo "open_tabs: with --headless, --browser must be chromium, firefox or webkit, got '$browser'" >&2; exit 2 ;;
  esac
  if [ "$browser" = webkit ] && [ "$proto" = h3 ]; then
    echo "open_tabs: WebKit has no HTTP/3 (WebKitGTK's libsoup links no QUIC library): use --proto h1, h1tls or h2" >&2; exit 2
  fi
elif [ "$browser" = webkit ]; then
  echo "open_tabs: --browser webkit is an engine for --headless (MiniBrowser runs under its own Xvfb); without --headless, --browser is a command" >&2; exit 2
fi

if [ "$proto" = h3 ]; then
  case $url in https://*) ;; *) echo "open_tabs: --proto h3 needs an https:// URL, got '$url'" >&2; exit 2 ;; esac
fi

# curl here speaks no HTTP/3: an h3 page is checked at its server's HTTPS (TCP) listener.
check_url=${stats_from:-$url}
started_pid=""
stop_started() { [ -n "$started_pid" ] && kill "$started_pid" 2>/dev/null || true; }
if ! curl -sk --max-time 2 -o /dev/null "${check_url%/}/healthz"; then
  if [ "$url" != "$default_url" ] || [ -n "$stats_from" ]; then
    echo "open_tabs: nothing answers at $check_url; start sselab there first" >&2; exit 1
  fi
  bin=$(sselab_bin)
  echo "open_tabs: starting $bin (log: /tmp/sselab-open-tabs.log)"
  "$bin" >/tmp/sselab-open-tabs.log 2>&1 &
  started_pid=$!
  for _ in $(seq 1 100); do
    curl -sk --max-time 1 -o /dev/null "${url%/}/healthz" && break
    kill -0 "$started_pid" 2>/dev/null || { echo "open_tabs: sselab did not start:" >&2; cat /tmp/sselab-open-tabs.log >&2; exit 1; }
    sleep 0.1
  done
fi

if [ "$headless" -eq 1 ]; then
  trap stop_started EXIT
  tcp_or_h3=tcp; [ "$proto" = h3 ] && tcp_or_h3=h3
  "$(sselab_bin)" tabs --browser "${browser:-chromium}" --url "$url" --tabs "$tabs" \
    --proto "$tcp_or_h3" ${stats_from:+--stats-from "$stats_from"} \
    ${share:+--share "$share"} "${settle[@]}" "${probe[@]}"
  exit 0
fi
if [ -n "$share" ]; then
  case $url in *\?*) url="$url&share=$share" ;; *) url="$url?share=$share" ;; esac
fi

if [ -z "$browser" ]; then
  for candidate in chromium google-chrome firefox xdg-open; do
    if command -v "$candidate" >/dev/null 2>&1; then browser=$candidate; break; fi
  done
fi
[ -n "$browser" ] || { echo "open_tabs: no browser found; pass --browser CMD or use --headless" >&2; exit 1; }

urls=()
for _ in $(seq 1 "$tabs"); do urls+=("$url"); done
quic=()
if [ "$proto" = h3 ]; then
  case $(basename "${browser%% *}") in
    chromium*|google-chrome*|chrome) ;;
    *) echo "open_tabs: --proto h3 opens Chromium (it takes QUIC switches on its command line); for Firefox use --headless --browser firefox" >&2; exit 2 ;;
  esac
  cert=${SSELAB_CERT_DIR:-certs}/cert.pem
  [ -r "$cert" ] || { echo "open_tabs: --proto h3 needs the server's certificate for its SPKI hash; $cert is not readable (set SSELAB_CERT_DIR)" >&2; exit 1; }
  spki=$(openssl x509 -in "$cert" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64)
  origin=${url#https://}; origin=${origin%%/*}
  # A fresh profile: a running Chromium with another profile would ignore the switches.
  profile=$(mktemp -d /tmp/sselab-h3-profile.XXXXXX)
  quic=(--user-data-dir="$profile" --origin-to-force-quic-on="$origin" --ignore-certificate-errors-spki-list="$spki")
  echo "open_tabs: $browser ${quic[*]}"
fi
case $(basename "${browser%% *}") in
  chromium*|google-chrome*|chrome) $browser "${quic[@]}" --new-window "${urls[@]}" >/dev/null 2>&1 & ;;
  firefox*) $browser --new-window "$url" >/dev/null 2>&1 &
            sleep 1
            for _ in $(seq 2 "$tabs"); do $browser --new-tab "$url" >/dev/null 2>&1; done ;;
  *) for _ in $(seq 1 "$tabs"); do $browser "$url" >/dev/null 2>&1 || true; done ;;
esac

echo "Opened $tabs tabs of $url in $browser."
case $proto:$url in
  h3:*) echo "Look for: all $tabs tick, each page says HTTP/3 — every stream on one QUIC connection." ;;
  *:http://*) echo "Look for: 6 tabs tick, the rest say 'waiting' — HTTP/1.1 allows 6 connections per host." ;;
  *:8444*) echo "Look for: still only 6 tick — TLS alone does not lift the limit; this listener is HTTP/1.1 only." ;;
  *) echo "Look for: all $tabs tick, on one HTTP/2 connection (each page says which connection)." ;;
esac
case $proto:$url in h3:*) ;; *:https://*)
  echo "The certificate is self-signed: accept it once in the first tab, or trust certs/cert.pem (see certs/README.md)." ;;
esac
echo "Live counts: ${url%/}/lab/dashboard"
[ -n "$started_pid" ] && echo "sselab keeps running (pid $started_pid); stop it with: kill $started_pid"
exit 0
