"""One prepared check of every GPU path, sized for one command on a lent GPU machine.

    python -m benchmarks.gpu_check --out DIR [--quick]

Runs the default pipeline's train -> export -> compress -> evaluate on the GPU, Lightning
bf16-mixed vs fp32 and torch.compile on vs off, ONNX Runtime's CUDA provider vs eager
PyTorch on the GPU (where onnxruntime-gpu works), the achieved share of the GPU's measured
peak, the deployed model's metric on GPU vs CPU, and ``pytest -m gpu``; writes
``gpu_check.json`` and ``gpu_check.md`` into DIR. Without a GPU every part that needs one
is skipped with its reason, and the rest runs on the CPU, so the script is tested here.

It needs only what the GPU machine's image has (torch, lightning, onnx, onnxruntime, pandas,
pillow, scikit-learn, pyyaml, pytest) plus the small pure-Python wheels named in
``carry.txt`` (pydantic and friends, torch-pruning), which ``make gpu-wheels`` downloads
into ``.whl/`` for the device call; no Prefect, DVC or Great Expectations.

On a lent GPU machine (the ``device`` tool), as one command of at most 10 minutes::

    make gpu-wheels            # here, once: Python 3.12 wheels into .whl/
    # device run, carry [".whl"], timeout_s 540:
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:$PWD/src:$PWD && python3 -m benchmarks.gpu_check --out $OUT

ONNX Runtime's CUDA provider needs onnxruntime-gpu, whose wheel is larger than what one
device call may carry and which the image does not hold: that part reports itself skipped
unless the machine already has a working CUDA provider.
"""
