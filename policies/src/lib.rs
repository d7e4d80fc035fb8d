//! Cedar admission for Gatehouse.
//!
//! ```text
//! control plane: config ──claims──▶ Engine::evaluate ──▶ ClaimDecision per claim
//!                          │            │                  (allow | warn | deny, findings)
//!                          │            └─ policies: *.cedar + GatewayPolicy text, compiled
//!                          │               once (parse, @id/@enforcement checks, strict
//!                          │               validation against the schema; all or nothing)
//!                          └─ derived facts (listener public? effective authn? granted?)
//!                             computed by the control plane, not by Cedar
//! ```
//!
//! - [`claims`]: one [`Claim`] per Cedar request: `attachRoute`, `claimHostname`,
//!   `exposePath`, `disableAuthn`, `referenceBackend`, and one per authn/authz setting
//!   (`useJwtProvider`, `requireClientCertificate`, `useExtAuth`, `setIpRules`,
//!   `configureCors`, `useBasicAuth`). This crate defines them; the controller builds them
//!   from its model.
//! - [`Engine`]: the policy set over a built-in baseline `permit`; guardrails are `forbid`
//!   policies carrying `@id`, `@message` and `@enforcement("deny"|"warn"|"dryrun")` (default
//!   deny). Decisions name policies by `@id`. Any evaluation error counts as a deny and says
//!   so (Cedar skips an erroring policy, which would fail open).
//! - Exemptions and tenants are data ([`AdmissionData`]): a namespace exempted from policy `P`
//!   is a member of `Exemption::"P"`; policies are never edited to exempt anyone.
//! - [`SCHEMA`]: the Cedar schema (namespace `Gatehouse`).
//!
//! It depends on nothing else of Gatehouse's.

pub mod claims;
mod diagnostic;
mod engine;
mod entities;
mod format;

pub use claims::{
    AdmissionData, Attachment, AuthnFacts, BackendFacts, Claim, ClaimKind, EXPOSURE_LABEL,
    JwtProviderFacts, ListenerFacts, PathFacts, RouteFacts, SourceFacts, is_public,
};
pub use diagnostic::{InvalidPolicySet, PolicyDiagnostic, Severity};
pub use engine::{
    ADMISSION_ID, BASELINE_ID, ClaimDecision, Compiled, Decision, Enforcement, Engine, Finding,
    PolicyInfo, PolicySource, SCHEMA, schema,
};
pub use format::format_policies;
