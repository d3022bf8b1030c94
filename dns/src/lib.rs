//! grove semantic DNS: name grammar, selection policies and the resolver. Arrives with issue 3.
