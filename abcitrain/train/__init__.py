"""The DeepSpeed starter kit: the spec's ``train:`` section (``config``), the planner that
picks ZeRO stage, offload, nodes and batch split (``planner``, ``prepare``), and the code that
runs inside the job (``data``, ``trainer``, ``tracking``; these import torch, DeepSpeed,
transformers and MLflow, so nothing on the CLI's light path imports them).

May import: ``domain``, ``errors``, ``util``, ``memory``, ``points`` (prices).
"""
