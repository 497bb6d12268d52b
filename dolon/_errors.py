"""Exceptions raised by dolon."""


class DolonError(Exception):
    """
    Base class of every exception that dolon raises.
    """


class ConfigurationError(DolonError, ValueError):
    """
    A tracer was given an argument it cannot work with, such as a sampling
    interval that is not a positive number or two columns with the same name.
    """
