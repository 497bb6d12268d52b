`start_thread_tracer` traces programs that do not use asyncio, from an event loop in a daemon thread.
