# Shared by the demo configs: synthetic DOTA-format data (256 px, 5 classes),
# a short AdamW schedule that trains narrow detectors from scratch on a CPU.
_base_ = [
    '../_base_/datasets/synthetic_dota.py',
    '../_base_/schedules/synthetic_adamw_12e.py'
]
