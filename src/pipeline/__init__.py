"""Task pipelines behind train.py and eval.py."""
