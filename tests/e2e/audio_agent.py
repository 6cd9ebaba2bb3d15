"""The tests' fake vendor with audio: a pjsua2 agent (null sound device) that answers calls and plays a tone,
echoes, or sends nothing, recording what it hears. Run as a process of its own (pjsua2 allows one endpoint per
process), it prints "ready" once it answers, and its calls' results as JSON when done:

    python -m tests.e2e.audio_agent PORT MODE RECORD_DIR [--tone HZ] [--calls N] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from softswitch_portal.switching.testcalls import agent, audio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("mode", choices=["tone", "echo", "silent"])
    parser.add_argument("record_dir")
    parser.add_argument("--tone", type=float, default=700)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    play = str(audio.write_tone(Path(args.record_dir) / "vendor-tone.wav", seconds=2, hz=args.tone))
    results = agent.answer_calls(args.port, args.mode, args.record_dir, play=play, calls=args.calls,
                                 timeout_s=args.timeout, ready=lambda: print("ready", flush=True))  # fmt: skip
    print(json.dumps([r.as_dict() | {"sip_trace": len(r.sip_trace)} for r in results]), flush=True)
    sys.stdout.flush()
    os._exit(0)  # pjsua2's own shutdown may wait on its threads: the results are out


if __name__ == "__main__":
    sys.exit(main())
