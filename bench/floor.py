"""The SIP floor of bench/callcore_cps.py --floor: callcore's own configuration, Python's work done natively.

What the floor costs is what any switch with callcore's SIP duties pays before
deciding anything: topology hiding, the caller's From rewritten and restored,
a dialog carrying the call's state, pike and the ban table, the native
in-dialog relay. callcore's CPU above it is the decision: Python and its
Redis round trips. The floor has no Redis and one fixed route, so it is a
bound, not a switch: it screens nothing and writes no CDR.
"""

from __future__ import annotations

import re

FLOOR_STATE = "x" * 1200  # the size of the call's JSON state kemi.py keeps in a dialog variable

FLOOR_ROUTES = {
    'python_exec("ksr_request_route");': "route(FLOOR_INITIAL);",
    # The branch keeps its call (kemi's answer is False only when the media proxy refuses the offer).
    'if (!python_exec("ksr_branch_vendor")) {\n        drop;\n    }': "return 1;",
    'python_exec("ksr_reply_vendor");': (
        'if (status =~ "^18[0-9]" && $dlg_var(ring) == $null) $dlg_var(ring) = $_s($TV(Sn));'
    ),
    'python_exec("ksr_failure_vendor");': "$dlg_var(code) = $T_reply_code;",
    'python_exec("ksr_dialog_event", "dialog:start");': "$dlg_var(ans) = $_s($TV(Sn));",
    'python_exec("ksr_dialog_event", "dialog:end");': 'if ($dlg_var(done) == $null) $dlg_var(done) = "1";',
    'python_exec("ksr_dialog_event", "dialog:failed");': 'if ($dlg_var(done) == $null) $dlg_var(done) = "1";',
    'python_exec("ksr_dialog_event", "dialog:timeout");': '$dlg_var(done) = "1";',
    # The timers': the benchmark's calls are postpaid and short, so nothing for them to do.
    'python_exec("ksr_grant_timer");': "return 1;",
    'python_exec("ksr_heartbeat");': "return 1;",
    # Bans: the benchmark's sources are never banned; the flood ban stays this node's own.
    'python_exec("ksr_ban_sync");': "return 1;",
    # The node's metrics timer (rendered only when SS_METRICS_PORT is set): its gauges are not the floor's.
    'python_exec("ksr_metrics_timer");': "return 1;",
    'python_exec("ksr_flood");': "$var(flood) = 1;",
}

FLOOR_INITIAL = """
# kemi.py's path for an initial INVITE, in Kamailio's own language, with the benchmark's one route.
route[FLOOR_INITIAL] {
    if (!sanity_check("@SANITY_CHECKS@", "@SANITY_URIS@")) {
        if (!is_method("ACK")) sanity_reply();
        exit;
    }
    if (!mf_process_maxfwd_header("10")) {
        if (!is_method("ACK")) sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (is_method("CANCEL|ACK")) {
        if (t_check_trans()) t_relay();
        exit;
    }
    t_check_trans();
    if (is_method("OPTIONS")) {
        sl_send_reply("200", "OK");
        exit;
    }
    if (!is_method("INVITE")) {
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }
    if (!t_newtran()) exit;
    $avp(ss_max_duration) = 3600;
    $dlg_ctx(timeout_bye) = 1;
    $dlg_ctx(timeout_route) = "ss_timeout";
    dlg_manage();
    $dlg_var(ss) = "@STATE@";
    $dlg_var(tried) = "[]";
    record_route();
    $dlg_var(att) = "0";
    $dlg_var(code) = "0";
    uac_replace_from("sip:00$fU@$fd");
    $ru = "sip:00" + $rU + "@127.0.0.1:@VENDOR_PORT@";
    $du = "sip:127.0.0.1:@VENDOR_PORT@;transport=udp";
    t_set_fr(120000, 8000);
    t_on_failure("ksr_failure_vendor");
    t_on_reply("ksr_reply_vendor");
    if (!t_relay()) t_reply("500", "Vendor Unreachable");
}
"""


def floor_config(values: dict, vendor_port: int) -> str:
    """callcore's rendered configuration with every python_exec replaced by FLOOR_ROUTES."""
    from callcore import sipsyntax
    from callcore.__main__ import render

    text = render(values)
    for call, native in FLOOR_ROUTES.items():
        if call not in text:
            raise RuntimeError(f"floor: kamailio.cfg.tmpl no longer has {call}: update FLOOR_ROUTES")
        text = text.replace(call, native)
    text = re.sub(r"^.*app_python3.*$", "", text, flags=re.M)
    # The two routes for unparsable messages call Python too; nothing in the benchmark reaches them.
    text = re.sub(r'python_exec\("ksr_(parse_error|missing_headers)"\);', "drop;", text)
    if "python_exec" in text:
        raise RuntimeError("floor: a python_exec left in the configuration: update FLOOR_ROUTES")
    initial = FLOOR_INITIAL
    for key, value in {"SANITY_CHECKS": sipsyntax.SANITY_CHECKS, "SANITY_URIS": sipsyntax.SANITY_URIS,
                       "STATE": FLOOR_STATE, "VENDOR_PORT": vendor_port}.items():  # fmt: skip
        initial = initial.replace(f"@{key}@", str(value))
    return text + initial
