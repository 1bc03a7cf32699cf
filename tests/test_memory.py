import json
import subprocess
import sys

import pytest

# run in a fresh interpreter: the page-fault count of a step depends on the heap's history,
# which the rest of the test session would make arbitrary
SCRIPT = """
import json, resource, sys
import torch
import rnnlab
from rnnlab.memory import retain_freed_memory
from rnnlab.train import Trainer

torch.set_num_threads(1)
torch.manual_seed(0)
data = rnnlab.load_dataset(rnnlab.DataConfig())
model = rnnlab.build_model("rnn", len(data.vocab), 256)
trainer = Trainer(model, data.ids, epochs=4)
trainer.fit(max_steps=10)  # applies the thresholds, warms the heap up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
trainer.fit(max_steps=16)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults_per_step": faults / 16, "applied": retain_freed_memory()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_steps_reuse_memory_instead_of_faulting_it_in():
    # the book's sizes: each step allocates and frees several 1.1 MB (T, B, H) buffers;
    # with glibc's default thresholds every step faults ~80-170 pages in again
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["applied"]
    assert result["faults_per_step"] < 20, result
