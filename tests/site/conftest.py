"""The option of the site checks: which built site to read."""


def pytest_addoption(parser):
    parser.addoption("--site", default="_site", help="the folder tools/build_site.py wrote (default _site)")
