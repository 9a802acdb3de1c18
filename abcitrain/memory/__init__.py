"""Model shapes (``shapes``: presets, Hugging Face configs, parameter counts) and the
training-memory estimator behind ``abcitrain memory`` and the planner: what a rank holds
between steps (``states``) and at the step's peak (``peak``). Pure, never torch.

May import: ``errors``, ``util``.
"""
