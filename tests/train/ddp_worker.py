"""Run by tests/train/test_distributed.py under torchrun: train, then save this rank's weights."""

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from clothes_extractor.train.config import TrainConfig
from clothes_extractor.train.loop import train
from clothes_extractor.train.runs import load_run_config

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    dump = Path(spec.pop("dump"))
    resume = spec.pop("resume", False)
    if resume:
        cfg = load_run_config(spec["out"]).with_changes(epochs=spec["epochs"])
    else:
        cfg = TrainConfig.from_dict(spec)
    result = train(cfg, resume=resume)
    save_file(result.state_dict, str(dump / f"rank{os.environ['RANK']}.safetensors"))
