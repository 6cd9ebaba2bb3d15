"""The portal's navigation: the product's areas and their pages."""

MENU = (
    (
        "Billing",
        (
            ("Accounts", "billing:account_list"),
            ("Payments", "billing:payment_list"),
            ("Rate tables", "billing:ratetable_list"),
            ("Rates", "billing:rate_list"),
            ("CDRs", "billing:cdr_list"),
            ("Balance history", "billing:balance_history"),
            ("Re-rating", "billing:reratejob_list"),
            ("CDR dead letters", "billing:dead_letters"),
        ),
    ),
    (
        "Live",
        (
            ("Current calls", "live:current_calls"),
            ("Registered phones", "live:registrations"),
            ("Statistics", "live:statistics"),
        ),
    ),
    (
        "Reports",
        (
            ("Revenue details", "billing:report_revenue"),
            ("Gateway bill", "billing:report_gateway_bill"),
            ("Account balances", "billing:report_account_balances"),
            ("Vendor clearing", "billing:report_vendor_clearing"),
        ),
    ),
    (
        "Switching",
        (
            ("Mapping gateways", "switching:mappinggateway_list"),
            ("Routing gateways", "switching:routinggateway_list"),
            ("Phones", "switching:phone_list"),
            ("Number transforms", "switching:numbertransformrule_list"),
            ("Routing schedules", "switching:routingschedule_list"),
            ("Caller number pools", "switching:callernumberpool_list"),
            ("System parameters", "switching:systemparameter_list"),
            ("Routing simulator", "switching:simulator"),
            ("Test calls", "switching:testcall_list"),
        ),
    ),
    (
        "Security",
        (
            ("Black/white lists", "security:blackwhitelistgroup_list"),
            ("List entries", "security:listentry_list"),
            ("Dynamic blacklist", "security:dynamicblacklistentry_list"),
            ("IP bans", "security:ban_list"),
            ("IP-country ranges", "security:ipcountryrange_list"),
            ("Alarms", "security:alarm_list"),
            ("Blacklist exemptions", "security:blacklistexemption_list"),
            ("Audit log", "auditlog:logentry_list"),
            ("Logins", "core:loginevent_list"),
            ("Login lockouts", "axes:accessattempt_list"),
            ("API clients", "security:apiclient_list"),
            ("API requests", "security:apirequestlog_list"),
            ("VOS API access", "vos:vosaccessrule_list"),
        ),
    ),
)


def navigation(request):
    return {"nav_menu": MENU}
