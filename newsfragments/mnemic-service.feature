`twistd mnemic` receives samples from dolon over UDP port 12013, stores every one in PostgreSQL and shows each run as charts at http://localhost:12111/.
