"""mmrskd: knowledge distillation for remote-sensing object detection.

torch and mmcv are not installed from here: torch must be the one already in
the environment (a CUDA build is kept), and mmcv 2.1.0 needs to be compiled
against it with ``--no-build-isolation``. ``make install`` does both; see the
README.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


def read_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmrskd', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmrskd',
    version=read_version(),
    description='Knowledge distillation for remote-sensing object detection '
    '(OpenMMLab 2.x)',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    package_data={'mmrskd.datasets': ['splits/*.json']},
    python_requires='>=3.9',
    install_requires=['torch>=2.0'] + read_requirements('runtime.txt'),
    extras_require=dict(tests=read_requirements('tests.txt')),
    license='Apache License 2.0',
    zip_safe=False,
)
