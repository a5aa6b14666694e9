# The rule that CSAKD's full-size configs use to carry alpha = beta = 1 over
# to detectors whose losses sum differently (README, "Loss scales"): over
# the first 100 iterations each term is scaled to 0.3 of the detection
# gradient at the student's neck, then frozen. 0.3 is where the weights that
# gained on the native synthetic pairs put both terms (0.09-0.44 for
# loss_cross, 0.24-0.49 for loss_agka); at beta = 1 loss_agka starts near
# 3,500 against ~130 of detection loss. A file of its own, so that the
# synthetic configs, which keep fixed weights, resolve as before.
csakd_grad_balance = dict(
    target_ratio=0.3, modules=['student.neck'], interval=10,
    calibration_iters=100)
