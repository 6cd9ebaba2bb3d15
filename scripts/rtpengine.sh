#!/usr/bin/env bash
# The media proxy (rtpengine, userspace forwarding) for the gateways whose media passes the switch; the Procfile
# starts it beside the call core, which drives it through Kamailio's rtpengine module on the control port.
#   SS_RTPENGINE_NG      control (NG protocol) address, 127.0.0.1:22223; the call core is given the same
#   SS_RTP_INTERFACE     the address RTP is relayed on and written into the SDP (SS_ADVERTISED_IP, else 127.0.0.1)
#   SS_RTP_PORT_MIN/MAX  the UDP ports it relays on (30000-39999: two per stream and side)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
# Our own media timeout (SS_MEDIA_TIMEOUT_SECONDS) ends silent calls; rtpengine's would only stop relaying a
# call on hold, so its timeouts are a day. Without the kernel module (table -1) it forwards in userspace.
exec rtpengine --config-file=none --foreground --log-stderr --table=-1 \
  --interface="${SS_RTP_INTERFACE:-${SS_ADVERTISED_IP:-127.0.0.1}}" \
  --listen-ng="${SS_RTPENGINE_NG:-127.0.0.1:22223}" \
  --port-min="${SS_RTP_PORT_MIN:-30000}" --port-max="${SS_RTP_PORT_MAX:-39999}" \
  --timeout=86400 --silent-timeout=86400 --final-timeout=0 --delete-delay=0 \
  --pidfile=var/rtpengine.pid "$@"
