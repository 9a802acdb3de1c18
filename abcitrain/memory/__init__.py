"""Model shapes (presets, Hugging Face configs, parameter counts) and the training-memory
estimator behind ``abcitrain memory`` and the planner. Pure; imports ``errors`` and ``util``
only, never torch.
"""
