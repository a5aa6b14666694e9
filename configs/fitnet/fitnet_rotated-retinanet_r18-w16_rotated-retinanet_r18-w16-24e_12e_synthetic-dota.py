# FitNet (feature imitation, MSE) on the five FPN levels of the CPU demo pair:
# the feature-level baseline of the benchmarks. Train the teacher first
# (tools/demo.py does).
_base_ = ('../demo/pkd_rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e'
          '_12e_synthetic-dota.py')
model = dict(
    connectors=dict(
        fpn_adapter=dict(
            type='MultiLevelConnector',
            num_levels=5,
            connector=dict(
                type='ConvBNConnector', in_channels=64, out_channels=64))),
    distill_losses=dict(
        _delete_=True,
        loss_fitnet=dict(type='FitNetLoss', loss_weight=1.0)),
    loss_mappings=dict(
        _delete_=True,
        loss_fitnet=dict(
            preds_S=dict(source='s_fpn', connector='fpn_adapter'),
            preds_T='t_fpn')))
