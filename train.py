"""Train a matcher: python train.py model=<method> data=<dataset> [key=value ...]"""

from corrlab.pipeline.cli import train_main

if __name__ == "__main__":
    train_main()
