#!/usr/bin/env python3
"""Export a detector or segmenter checkpoint to a Fieldmark model pack (build-time tool).

    python build_scripts/export_models.py --family owlv2 --checkpoint google/owlv2-base-patch16-ensemble --out packs/owlv2
    python build_scripts/export_models.py --family sam --random tiny --out /tmp/sam-tiny

Needs torch and transformers (requirements-export.txt); the app itself never imports them.
``--checkpoint`` takes a Hugging Face id (needs network once) or a local folder made by
``save_pretrained``; ``--random tiny|full`` builds random weights from the family's config
(tiny for tests, full-size for benchmarks: same FLOPs as the real checkpoint).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_scripts.exporters import EXPORTERS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", required=True, choices=sorted(EXPORTERS), help="model family")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="Hugging Face model id or local checkpoint folder")
    src.add_argument("--random", choices=("tiny", "full", "slimsam-50", "slimsam-77"),
                     help="random weights from the family config (slimsam-* sizes: --family sam only)")
    p.add_argument("--out", required=True, type=Path, help="pack folder to create")
    p.add_argument("--zip", action="store_true", help="also write <out>.zip")
    p.add_argument("--quantize", action="store_true", help="dynamic-int8 weights (smaller, often faster on CPU)")
    p.add_argument("--seed", type=int, default=0, help="seed for --random weights")
    p.add_argument("--id", dest="pack_id", help="pack id (default: derived from the checkpoint)")
    p.add_argument("--version", default="1.0.0", help="pack version")
    args = p.parse_args(argv)

    from backend.models.pack import zip_pack

    if args.random and args.random.startswith("slimsam") and args.family != "sam":
        p.error(f"--random {args.random} is a SAM size; use it with --family sam")

    export = EXPORTERS[args.family]
    pack = export(family=args.family, checkpoint=args.checkpoint, random=args.random, out=args.out,
                  quantize=args.quantize, seed=args.seed, pack_id=args.pack_id, version=args.version)
    print(f"wrote pack {pack.id}@{pack.version} to {pack.root}")
    if args.zip:
        z = zip_pack(pack.root, args.out.with_suffix(".zip"))
        print(f"wrote {z}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
