//! Gateways: `route` declarations compiled to a router, and (in the server) the forward-auth
//! endpoint that nginx `auth_request`, Envoy `ext_authz` and Traefik `forwardAuth` call.

pub mod routes;
