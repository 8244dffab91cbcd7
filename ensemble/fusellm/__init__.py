"""FuseLLM (Wan et al., ICLR 2024): distil several source models into one target by continual training.

Stages, one module each: corpus -> prepare -> vocabmap -> seqalign + fusion -> train -> evaluate; `pipeline`
wires them to a work folder and `__main__` is the command (`python -m ensemble.fusellm`, docs/fusellm.md).
"""
