A run can be deleted from its page after a confirmation; the request needs a token from the page, so other sites cannot delete runs.
