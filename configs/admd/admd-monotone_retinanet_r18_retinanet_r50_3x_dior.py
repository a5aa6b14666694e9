# ADMD with the monotone weight-increasing schedule w_t = 1 + gamma * t / T
# in place of the adaptive one, RetinaNet R50 -> R18 on DIOR, 3x.
_base_ = './admd_retinanet_r18_retinanet_r50_3x_dior.py'
model = dict(
    loss_schedules=dict(
        loss_admd=dict(_delete_=True, type='ADMDMonotoneWeight', gamma=2.0)))
