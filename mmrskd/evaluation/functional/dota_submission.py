"""DOTA server submission files."""
import os
import os.path as osp
import zipfile

from mmrskd.structures import as_box_array


def write_dota_submission(results, classes, box_type, out_dir):
    """Write one DOTA result file per class and zip them.

    Rotated and quadrilateral boxes go to ``Task1_<class>.txt`` (oriented
    task, lines ``img score x1 y1 x2 y2 x3 y3 x4 y4``), horizontal boxes to
    ``Task2_<class>.txt`` (horizontal task, ``img score xmin ymin xmax
    ymax``), as https://captain-whu.github.io/DOTA/tasks.html expects.

    Args:
        results (Sequence[dict]): per image ``img_id``, ``bboxes`` (N, D),
            ``scores`` (N,), ``labels`` (N,).
        classes (Sequence[str]): class names, indexed by label.
        box_type (str): 'hbox', 'rbox' or 'qbox'.
        out_dir (str): folder for the txt files; the zip is
            ``<out_dir>/<basename of out_dir>.zip``, as mmrotate's
            ``DOTAMetric`` names it.

    Returns:
        str: path of the zip file.
    """
    os.makedirs(out_dir, exist_ok=True)
    task, out_type = ('Task2', 'hbox') if box_type == 'hbox' else ('Task1',
                                                                   'qbox')
    lines = [[] for _ in classes]
    for result in results:
        boxes = as_box_array(result['bboxes'], out_type)
        for box, score, label in zip(boxes, result['scores'],
                                     result['labels']):
            coords = ' '.join(f'{v:.2f}' for v in box)
            lines[int(label)].append(
                f"{result['img_id']} {float(score):.6f} {coords}\n")

    paths = []
    for name, class_lines in zip(classes, lines):
        path = osp.join(out_dir, f'{task}_{name}.txt')
        with open(path, 'w') as f:
            f.writelines(class_lines)
        paths.append(path)
    zip_path = osp.join(out_dir, osp.basename(osp.normpath(out_dir)) + '.zip')
    with zipfile.ZipFile(zip_path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, osp.basename(path))
    return zip_path
