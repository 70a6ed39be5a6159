"""Compare MouseNet with (synthetic) Allen Brain Observatory recordings, end to end.

Writes a small synthetic Brain Observatory cache in the layout of the real one, compiles the
spec with untrained weights, and runs the same analyses as ``mnc rsa`` and
``mnc physiology``. With real data, point ``--boc-cache`` at a Brain Observatory cache::

    python examples/neural_comparison.py --out /tmp/mnc-neuro-demo
    python examples/neural_comparison.py --boc-cache ~/allen/boc --out rsa-untrained

Needs the neuro extra: ``pip install 'mnc[neuro]'``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnc.neuro.api import AnalysisOptions, run_physiology, run_rsa
from mnc.neuro.model_features import load_model
from mnc.neuro.sources.synthetic import write_synthetic_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="mouse")
    parser.add_argument("--weights", default="untrained")
    parser.add_argument("--boc-cache", type=Path, help="real cache (default: write synthetic)")
    parser.add_argument("--out", type=Path, default=Path("neural-comparison"))
    args = parser.parse_args()

    cache = args.boc_cache
    if cache is None:
        cache = args.out / "synthetic-boc"
        ids = write_synthetic_cache(cache, trials=20, noise_sd=0.3)
        print(f"synthetic Brain Observatory cache: {cache} ({len(ids)} sessions)")
    loaded = load_model(args.spec, args.weights)
    options = AnalysisOptions(n_boot=50)
    rsa = run_rsa(loaded, cache, args.out / "rsa", options=options)
    print(f"{'region':18} {'best population':16} {'SSM':>6} {'+-':>6} {'ceiling':>14}"
          f"  IR population (SSM)")
    for row in rsa.tables["rsa_best"].to_dict(orient="records"):  # a pandas DataFrame
        if row["method"] != "spearman":
            continue
        mapped = (f"{row['ir_population']} ({row['ir_population_ssm']:.3f})"
                  if row["ir_population"] else "-")
        print(f"{row['region']:18} {row['population']:16} {row['ssm']:6.3f} "
              f"{row['ssm_std']:6.3f} {row['nc_lower']:5.3f} to {row['nc_upper']:5.3f}  {mapped}")
    physiology = run_physiology(loaded, cache, args.out / "physiology", options=options)
    written = sorted(set(rsa.files.values()) | set(physiology.files.values()))
    print("\nfigures and tables:\n  " + "\n  ".join(written))


if __name__ == "__main__":
    main()
