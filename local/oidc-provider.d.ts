// oidc-provider ships no types; the local issuer uses a small, explicit slice of it.
declare module 'oidc-provider';
