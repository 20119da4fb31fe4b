"""Evaluate a matcher: python eval.py model=<method> data=<benchmark> [ckpt_path=... | weights=...]"""

from corrlab.pipeline.cli import eval_main

if __name__ == "__main__":
    eval_main()
