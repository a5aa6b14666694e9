"""Write the student of a distillation checkpoint as a plain checkpoint.

    python tools/model_converters/distill_to_student.py \
        work_dirs/pkd_.../epoch_12.pth student.pth

The result holds only the student's weights (no teacher, connectors, KD loss
modules or optimizer) and loads with the student's own config in stock
mmdet/mmrotate ``tools/test.py``.
"""
import argparse

import mmrskd  # noqa: F401
from mmrskd.utils.checkpoint import atomic_save, safe_load, student_checkpoint
from mmrskd.utils.cli import exit_on_user_error


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='distiller checkpoint')
    parser.add_argument('dst', help='output student checkpoint')
    args = parser.parse_args(argv)
    student = student_checkpoint(safe_load(args.src))
    atomic_save(student, args.dst)
    print(f'{args.dst}: {len(student["state_dict"])} student tensors')


if __name__ == '__main__':
    main()
