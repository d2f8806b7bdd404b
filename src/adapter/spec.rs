//! The adapter file format (`adapters/<vendor>.toml`), exactly as written by a person.
//!
//! These types only describe; [`super::compile`] checks them and turns them into the fast,
//! validated [`super::Adapter`]. Unknown keys are refused everywhere, so a typo is an error with
//! its place, never a silently ignored rule. `adapters/README.md` documents every key.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterSpec {
    /// The vendor name providers refer to (`vendor = "…"` in config).
    pub vendor: String,
    /// Human name, for `check` and `/v1/providers`.
    #[serde(default)]
    pub name: Option<String>,
    pub auth: AuthSpec,
    pub id: IdSpec,
    pub operations: BTreeMap<String, OperationSpec>,
    #[serde(default)]
    pub errors: ErrorSpec,
    /// Canonical field (dotted, e.g. `agent.phone`) → rule.
    pub fields: BTreeMap<String, RuleSpec>,
    #[serde(default)]
    pub messages: Option<MessagesSpec>,
    /// Named enum maps used by `map = "…"` in rules.
    #[serde(default)]
    pub maps: BTreeMap<String, EnumMapSpec>,
    /// Every status value the vendor documents; each must be mapped by the `status` rule's map.
    #[serde(default)]
    pub statuses: Vec<String>,
    /// Canonical value → vendor value maps used by write body templates (`"$map"`).
    #[serde(default)]
    pub outbound_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Canonical filter value → the vendor values that may hold it (`values = "…"` of a body
    /// filter); a superset, refined by `local = true`.
    #[serde(default)]
    pub filter_values: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// How the vendor streams a call's events; without it callgate polls `get_call`.
    #[serde(default)]
    pub events: Option<EventsSpec>,
}

/// `[events]`: how live events of a call are read from the vendor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    pub style: EventStyle,
    /// `sse`: a single-use credential obtained before every (re)connect.
    #[serde(default)]
    pub ticket: Option<TicketSpec>,
    /// `sse`: the vendor's stream of a call's messages.
    #[serde(default)]
    pub stream: Option<StreamSpec>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventStyle {
    /// Read `get_call` repeatedly and compare (the default without `[events]`).
    Poll,
    /// The vendor's Server-Sent Events stream carries the messages; status comes from `get_call`.
    Sse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketSpec {
    pub method: String,
    /// Path template; placeholders are the id's params (as in `get_call`).
    pub path: String,
    /// Where the ticket is in the answer.
    pub value: PathsSpec,
    /// The stream's query parameter that carries it.
    pub param: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Path template of the `GET`; placeholders are the id's params.
    pub path: String,
    /// Fixed query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The header a reconnect names the last message in (default `Last-Event-ID`) …
    #[serde(default)]
    pub resume_header: Option<String>,
    /// … or the query parameter instead.
    #[serde(default)]
    pub resume_param: Option<String>,
    /// The `event:` type of a message (default `message`).
    #[serde(default)]
    pub message_event: Option<String>,
    /// Where the message object is in the event's JSON data (default `$`); it is read with
    /// `[messages.fields]`.
    #[serde(default)]
    pub message: Option<String>,
    /// The vendor's keep-alive event type, if it sends one (read, never forwarded).
    #[serde(default)]
    pub heartbeat_event: Option<String>,
    /// Nothing received for this long: the stream is dead and callgate reconnects (default
    /// 60,000; set it above the vendor's heartbeat interval).
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `Authorization: Basic base64(username:password)`; credentials `username`, `password`.
    Basic,
    /// `Authorization: Bearer <token>`; one credential.
    Bearer,
    /// Each header in `headers` carries one credential verbatim.
    Headers,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    pub scheme: AuthScheme,
    /// Credential names a provider of this vendor must configure.
    pub credentials: Vec<String>,
    /// For `headers`: header name → credential name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdSpec {
    /// The components of a canonical id after the provider, in order.
    pub parts: Vec<IdPartSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdPartSpec {
    /// The path parameter of `get_call` this component fills.
    pub param: String,
    /// The canonical field whose value this component is.
    pub from: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    pub method: String,
    /// Path template; `{name}` placeholders are filled (percent-encoded) from id parts or filters.
    pub path: String,
    /// Fixed query parameters sent on every request of this operation.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// `get_call`: where the call object sits in the answer (first match wins).
    #[serde(default)]
    pub item: Option<PathsSpec>,
    /// `list_calls`: where the call objects sit in the answer.
    #[serde(default)]
    pub items: Option<PathsSpec>,
    #[serde(default)]
    pub pagination: Option<PaginationSpec>,
    /// `list_calls`: canonical filter name → how it is honoured. A filter not listed is refused
    /// with `unsupported_filter`.
    #[serde(default)]
    pub filters: BTreeMap<String, FilterSpec>,
    /// `list_calls`: the vendor's filtered list, used when a filter goes into a body
    /// (`body = "filter_criteria.agent_id"`); it takes the pagination parameters in its body.
    #[serde(default)]
    pub filtered: Option<FilteredSpec>,
    /// Writes: path placeholder → JSONPath into the canonical request (`agent_id = "$.agentId"`).
    #[serde(default)]
    pub path_params: BTreeMap<String, String>,
    /// Writes: the vendor's JSON body as a template (see adapters/README.md).
    #[serde(default)]
    pub body: Option<toml::Value>,
    /// Writes: the header that carries the client's `Idempotency-Key` to the vendor.
    #[serde(default)]
    pub idempotency_header: Option<String>,
    /// Writes: canonical request fields this vendor needs beyond the canonical minimum.
    #[serde(default)]
    pub require: Vec<String>,
    /// `create_call`: the channels this vendor can start (default: all).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Writes: field rules for this operation's answer, over `[fields]`.
    #[serde(default)]
    pub fields: BTreeMap<String, RuleSpec>,
}

/// One JSONPath, or several tried in order.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum PathsSpec {
    One(String),
    Many(Vec<String>),
}

impl PathsSpec {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            PathsSpec::One(p) => vec![p.clone()],
            PathsSpec::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PaginationStyle {
    /// The vendor returns everything; callgate slices pages itself.
    None,
    /// Numbered pages of a chosen size.
    Page,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaginationSpec {
    pub style: PaginationStyle,
    #[serde(default)]
    pub page_param: Option<String>,
    #[serde(default)]
    pub size_param: Option<String>,
    /// Number of the first page (1 for 1-based vendors, 0 for 0-based).
    #[serde(default)]
    pub first_page: u32,
    #[serde(default)]
    pub max_size: Option<u32>,
    #[serde(default)]
    pub has_next: Option<PathsSpec>,
    #[serde(default)]
    pub total: Option<PathsSpec>,
    #[serde(default)]
    pub total_pages: Option<PathsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FilterSpec {
    /// `"local"`: callgate applies the filter to normalized calls.
    Word(String),
    Table(FilterTable),
}

/// `[operations.list_calls.filtered]`: the request of a vendor's filtered list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilteredSpec {
    pub method: String,
    pub path: String,
    /// Fixed fields of the body (sorting, …), as JSON written in TOML.
    #[serde(default)]
    pub body: Option<toml::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FilterTable {
    /// Send as this query parameter.
    #[serde(default)]
    pub query: Option<String>,
    /// Fill this path placeholder (the filter becomes required).
    #[serde(default)]
    pub path_param: Option<String>,
    /// How to write the value: `value` (as given), `date` (YYYY-MM-DD; only whole days accepted).
    #[serde(default)]
    pub format: Option<FilterFormat>,
    /// Put it in the filtered list's body at this dotted path.
    #[serde(default)]
    pub body: Option<String>,
    /// For `body`: the name of a `[filter_values]` map giving the vendor values of each
    /// canonical value; the body gets a list of them.
    #[serde(default)]
    pub values: Option<String>,
    /// Also apply it in callgate after normalization.
    #[serde(default)]
    pub local: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterFormat {
    Value,
    Date,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ErrorSpec {
    /// Where the vendor's human message is (a string or an array of strings).
    #[serde(default)]
    pub message: Option<PathsSpec>,
    /// Where the vendor's machine code is.
    #[serde(default)]
    pub code: Option<PathsSpec>,
    /// A 2xx answer matching this condition is an error too.
    #[serde(default)]
    pub error_when: Option<ConditionSpec>,
}

/// How one canonical field is found: a JSONPath, a list of alternatives (first non-null wins),
/// or a table.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RuleSpec {
    Path(String),
    Alternatives(Vec<RuleSpec>),
    Table(Box<RuleTable>),
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    #[serde(default)]
    pub path: Option<String>,
    /// A request parameter (path placeholder of the operation, e.g. `agent_id`).
    #[serde(default)]
    pub param: Option<String>,
    /// A constant.
    #[serde(default, rename = "const")]
    pub constant: Option<toml::Value>,
    #[serde(default)]
    pub transform: Option<String>,
    /// Name of an enum map in `[maps]`.
    #[serde(default)]
    pub map: Option<String>,
    /// Use this rule only when the condition holds.
    #[serde(default)]
    pub when: Option<ConditionSpec>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub path: String,
    /// `null` (present and null), `absent` (no such key), `missing` (absent or null),
    /// `present` (not null), `falsy` (missing, false, 0, "").
    #[serde(default)]
    pub is: Option<String>,
    /// Case-insensitive string equality.
    #[serde(default)]
    pub equals: Option<String>,
    /// Case-insensitive membership.
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// Case-insensitive prefix (`error_` for a family of reasons).
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumMapSpec {
    /// Vendor value (matched case-insensitively) → canonical value.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Conditional rules, tried before `values`.
    #[serde(default)]
    pub rules: Vec<EnumRuleSpec>,
    /// Canonical value when the vendor sends nothing at all.
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumRuleSpec {
    /// The vendor value this rule applies to (case-insensitive); none = any.
    #[serde(default)]
    pub value: Option<String>,
    /// Conditions that must all hold.
    #[serde(default)]
    pub all: Vec<ConditionSpec>,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesSpec {
    /// The message nodes (an array, or a path selecting several nodes).
    pub path: String,
    /// Message field (`id`, `role`, `content`, `createdAt`, `status`) → rule, relative to a message.
    pub fields: BTreeMap<String, RuleSpec>,
    #[serde(default)]
    pub attachments: Option<AttachmentsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentsSpec {
    /// Relative to a message.
    pub path: String,
    /// `type`, `url` → rule, relative to an attachment node.
    pub fields: BTreeMap<String, RuleSpec>,
}
