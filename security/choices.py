from django.db import models


class ListKind(models.TextChoices):
    BLACK = "black", "Black list"
    WHITE = "white", "White list"
    # Prefixes of high-risk destinations (premium, satellite, IRSF-abused ranges): not attached to gateways,
    # every gateway and account is screened by the anti-fraud rules against them.
    HIGH_RISK = "highrisk", "High-risk destinations"


class MatchKind(models.TextChoices):
    EXACT = "exact", "Full number"
    PREFIX = "prefix", "Prefix"


class BlacklistScope(models.TextChoices):
    GATEWAY = "gateway", "One gateway (standalone)"
    CENTRAL = "central", "Switch-wide (central)"


class BlacklistStatus(models.TextChoices):
    AWAITING_REVIEW = "awaiting_review", "Awaiting review"
    CONFIRMED = "confirmed", "Confirmed by an admin"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class BlacklistSubject(models.TextChoices):
    """What a dynamic blacklist entry blocks (callcore.contract.fraud's subjects)."""

    NUMBER = "number", "Number (caller or callee)"
    ACCOUNT = "account", "Account, every call"
    ACCOUNT_HIGH_RISK = "account_high_risk", "Account, calls to high-risk destinations"


class FraudRuleChoice(models.TextChoices):
    """The anti-fraud rules (callcore.contract.FraudRule), as the portal names them."""

    MALICIOUS_CALLER = "malicious_caller", "Malicious caller"
    CONCURRENT_CALLER = "concurrent_caller", "Concurrent caller"
    HIGH_RISK_RATE = "high_risk_rate", "High-risk destination rate"
    SPEND_VELOCITY = "spend_velocity", "Spend velocity (reserved)"
    NEW_DESTINATION = "new_destination", "New destination"
    NO_ANSWER_CALLEE = "no_answer_callee", "No-answer callee"
    SHORT_CALL_BURST = "short_call_burst", "Short-call burst"
    SPEND_VELOCITY_ACTUAL = "spend_velocity_actual", "Spend velocity (actual)"
    LONG_CALL = "long_call", "Long call"


class FraudSeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlarmKind(models.TextChoices):
    """What an alarm is about; the comment gives VOS3000's alarm type (its E11 code) where it has one."""

    ILLEGAL_CALL_BURST = "illegal_call_burst", "Illegal-call burst"  # 20020 illegal call
    FRAUD_WARNING = "fraud_warning", "Fraud rule warning"
    FRAUD_CRITICAL = "fraud_critical", "Fraud rule critical"
    ASR_DROP = "asr_drop", "ASR drop"  # 20000 routing-gateway ASR
    ACD_DROP = "acd_drop", "ACD drop"  # 20001 routing-gateway ACD
    TRAFFIC_SPIKE = "traffic_spike", "Traffic spike"  # 20023 mapping-gateway concurrency rise
    LONG_CALL = "long_call", "Long calls"  # 20016 call duration
    LOW_BALANCE = "low_balance", "Low balance"  # 20007 account balance
    INGEST_LAG = "ingest_lag", "CDR ingest lag"  # 20006 pending CDRs
    DEAD_LETTERS = "dead_letters", "CDR dead letters"
    NODE_SILENT = "node_silent", "Call-core node silent"  # 20018 process ended


class AlarmSeverity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlarmSubject(models.TextChoices):
    """What an alarm's subject value names."""

    ACCOUNT = "account", "Account"
    ACCOUNT_HIGH_RISK = "account_high_risk", "Account, high-risk calls"
    MAPPING_GATEWAY = "mapping_gateway", "Mapping gateway"
    ROUTING_GATEWAY = "routing_gateway", "Routing gateway"
    NUMBER = "number", "Number"
    IP = "ip", "Source IP"
    NODE = "node", "Call-core node"
    SWITCH = "switch", "The switch"
