package bounceclass

// Reasons, in the Sisimai vocabulary. Result.Reason is always one of these.
const (
	ReasonUserUnknown     = "userunknown"
	ReasonMailboxFull     = "mailboxfull"
	ReasonFiltered        = "filtered"
	ReasonExpired         = "expired"
	ReasonRejected        = "rejected"
	ReasonBlocked         = "blocked"
	ReasonHostUnknown     = "hostunknown"
	ReasonAuthFailure     = "authfailure"
	ReasonRequirePTR      = "requireptr"
	ReasonBadReputation   = "badreputation"
	ReasonSpeeding        = "speeding"
	ReasonTooManyConn     = "toomanyconn"
	ReasonSpamDetected    = "spamdetected"
	ReasonPolicyViolation = "policyviolation"
	ReasonSuspend         = "suspend"
	ReasonSecurityError   = "securityerror"
	ReasonNotAccept       = "notaccept"
	ReasonNetworkError    = "networkerror"
	ReasonSystemError     = "systemerror"
	ReasonMailerError     = "mailererror"
	ReasonMesgTooBig      = "mesgtoobig"
	ReasonExceedLimit     = "exceedlimit"
	ReasonOnHold          = "onhold"
	ReasonNoRelaying      = "norelaying"
	ReasonHasMoved        = "hasmoved"
	ReasonContentError    = "contenterror"
	ReasonNotCompliantRFC = "notcompliantrfc"
	ReasonVirusDetected   = "virusdetected"
	ReasonSyntaxError     = "syntaxerror"
	ReasonSystemFull      = "systemfull"
	ReasonFailedSTARTTLS  = "failedstarttls"
	ReasonUndefined       = "undefined"
	ReasonDelivered       = "delivered"
)

// Categories: the coarse classes operators chart. CategoryOf maps reasons to them.
const (
	CategoryUserUnknown     = "user_unknown"
	CategoryMailboxFull     = "mailbox_full"
	CategoryMailboxDisabled = "mailbox_disabled"
	CategoryBlocked         = "blocked_ip_or_blocklist"
	CategoryRateLimited     = "rate_limited"
	CategoryAuth            = "policy_auth_spf_dkim_dmarc"
	CategoryPolicy          = "policy"
	CategorySpamContent     = "spam_content"
	CategorySenderRejected  = "sender_rejected"
	CategoryFiltered        = "filtered"
	CategoryDomainUnknown   = "domain_unknown"
	CategoryExpired         = "expired"
	CategoryNetwork         = "network"
	CategoryMessageTooBig   = "message_too_big"
	CategoryRemoteSystem    = "remote_system"
	CategoryOther           = "other"
)

var reasonCategory = map[string]string{
	ReasonUserUnknown:     CategoryUserUnknown,
	ReasonHasMoved:        CategoryUserUnknown,
	ReasonMailboxFull:     CategoryMailboxFull,
	ReasonSuspend:         CategoryMailboxDisabled,
	ReasonBlocked:         CategoryBlocked,
	ReasonBadReputation:   CategoryBlocked,
	ReasonSpeeding:        CategoryRateLimited,
	ReasonTooManyConn:     CategoryRateLimited,
	ReasonAuthFailure:     CategoryAuth,
	ReasonRequirePTR:      CategoryAuth,
	ReasonPolicyViolation: CategoryPolicy,
	ReasonNotCompliantRFC: CategoryPolicy,
	ReasonFailedSTARTTLS:  CategoryPolicy,
	ReasonSecurityError:   CategoryPolicy,
	ReasonNoRelaying:      CategoryPolicy,
	ReasonSpamDetected:    CategorySpamContent,
	ReasonContentError:    CategorySpamContent,
	ReasonVirusDetected:   CategorySpamContent,
	ReasonRejected:        CategorySenderRejected,
	ReasonFiltered:        CategoryFiltered,
	ReasonHostUnknown:     CategoryDomainUnknown,
	ReasonExpired:         CategoryExpired,
	ReasonNetworkError:    CategoryNetwork,
	ReasonMesgTooBig:      CategoryMessageTooBig,
	ReasonExceedLimit:     CategoryMessageTooBig,
	ReasonSystemError:     CategoryRemoteSystem,
	ReasonSystemFull:      CategoryRemoteSystem,
	ReasonMailerError:     CategoryRemoteSystem,
	ReasonNotAccept:       CategoryRemoteSystem,
	ReasonOnHold:          CategoryOther,
	ReasonSyntaxError:     CategoryOther,
	ReasonUndefined:       CategoryOther,
	ReasonDelivered:       CategoryOther,
}

// Reasons lists every reason Classify can return, in declaration order.
var Reasons = []string{
	ReasonUserUnknown, ReasonMailboxFull, ReasonFiltered, ReasonExpired, ReasonRejected,
	ReasonBlocked, ReasonHostUnknown, ReasonAuthFailure, ReasonRequirePTR, ReasonBadReputation,
	ReasonSpeeding, ReasonTooManyConn, ReasonSpamDetected, ReasonPolicyViolation, ReasonSuspend,
	ReasonSecurityError, ReasonNotAccept, ReasonNetworkError, ReasonSystemError, ReasonMailerError,
	ReasonMesgTooBig, ReasonExceedLimit, ReasonOnHold, ReasonNoRelaying, ReasonHasMoved,
	ReasonContentError, ReasonNotCompliantRFC, ReasonVirusDetected, ReasonSyntaxError,
	ReasonSystemFull, ReasonFailedSTARTTLS, ReasonUndefined, ReasonDelivered,
}

// Categories lists every category, in declaration order.
var Categories = []string{
	CategoryUserUnknown, CategoryMailboxFull, CategoryMailboxDisabled, CategoryBlocked,
	CategoryRateLimited, CategoryAuth, CategoryPolicy, CategorySpamContent,
	CategorySenderRejected, CategoryFiltered, CategoryDomainUnknown, CategoryExpired,
	CategoryNetwork, CategoryMessageTooBig, CategoryRemoteSystem, CategoryOther,
}

// CategoryOf returns the coarse category of a reason; unknown reasons are "other".
func CategoryOf(reason string) string {
	if c, ok := reasonCategory[reason]; ok {
		return c
	}
	return CategoryOther
}

// permanentReasons are failures that do not go away by retrying, used for
// Result.Permanent only when neither a reply code nor a status is known.
var permanentReasons = map[string]bool{
	ReasonUserUnknown: true, ReasonHostUnknown: true, ReasonHasMoved: true, ReasonNotAccept: true,
	ReasonMesgTooBig: true, ReasonSuspend: true, ReasonNoRelaying: true, ReasonNotCompliantRFC: true,
	ReasonVirusDetected: true, ReasonExpired: true,
}
