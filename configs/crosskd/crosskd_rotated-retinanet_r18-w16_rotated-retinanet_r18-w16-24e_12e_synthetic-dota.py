# CrossKD on the CPU demo pair: the student's FPN features run through the
# frozen teacher head, whose class logits are supervised by the teacher's
# own (KD quality focal loss) and whose box deltas by the teacher's (MSE).
# The head-level baseline of the benchmarks. Train the teacher first
# (tools/demo.py does).
_base_ = ('../demo/pkd_rotated-retinanet_r18-w16_rotated-retinanet_r18-w16-24e'
          '_12e_synthetic-dota.py')
model = dict(
    taps=dict(
        _delete_=True,
        s_fpn='student.neck',
        # (cls logits, box deltas) per level
        t_head='teacher.bbox_head'),
    cross_forwards=dict(
        cross_head=dict(source='s_fpn', modules=['bbox_head'])),
    distill_losses=dict(
        _delete_=True,
        loss_cross_cls=dict(
            type='KDQualityFocalLoss', beta=1.0, loss_weight=1.0),
        loss_cross_reg=dict(type='FitNetLoss', loss_weight=1.0)),
    loss_mappings=dict(
        _delete_=True,
        loss_cross_cls=dict(preds_S='cross_head[0]', preds_T='t_head[0]'),
        loss_cross_reg=dict(preds_S='cross_head[1]', preds_T='t_head[1]')))
