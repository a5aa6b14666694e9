# The demo student, trained alone.
_base_ = ['./_base_.py', './_rotated_retinanet_tiny.py']
