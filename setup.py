"""Packaging for dolon (the client library) and mnemic (the service)."""

from setuptools import find_packages, setup

MNEMIC_REQUIRES = [
    "twisted >= 23.8, < 27",
    "klein >= 23.5, < 25",
    "txpostgres >= 1.7, < 2",
    "psycopg2-binary >= 2.9, < 3",
    "jinja2 >= 3.1, < 4",
    "pgserver >= 0.1.4, < 0.2",
    # Ships uPlot's built files (uPlot.iife.js, uPlot.min.css), which mnemic
    # serves itself so that the page works without internet access.
    "uplot-python >= 1.1, < 2",
]

TEST_REQUIRES = [
    "treq >= 23.11, < 27",
    "hypothesis >= 6.100, < 7",
    "playwright >= 1.45, < 2",
    "prometheus-client >= 0.20, < 1",
    # tests/test_dolon_postgres.py runs PostgresDiagnostics against the
    # embedded server.
    "asyncpg >= 0.29, < 1",
]

setup(
    name="mnemic",
    version="2.0.0.dev0",
    description="Live tracing of running Python programs: dolon samples, "
    "mnemic stores in PostgreSQL and charts in a browser.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["dolon", "dolon.*", "mnemic", "mnemic.*"])
    + ["twisted.plugins"],
    package_data={
        "mnemic": ["templates/*.html", "static/*"],
        "twisted.plugins": ["mnemic_plugin.py"],
    },
    install_requires=["psutil >= 5.9, < 8"],
    extras_require={
        "mnemic": MNEMIC_REQUIRES,
        "postgres": ["asyncpg >= 0.29, < 1"],
        "test": MNEMIC_REQUIRES + TEST_REQUIRES,
    },
    classifiers=[
        "Framework :: AsyncIO",
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Monitoring",
    ],
)
