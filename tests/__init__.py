"""
Tests of dolon and mnemic, run with trial.
"""
