# shellcheck shell=bash
# Written by the apgstack bastion bootstrap: every interactive bash command is sent to syslog
# (facility local6), which rsyslog writes to /var/log/bastion/bastion.log for the CloudWatch agent.
# The audit log records every execve as well; this is the readable form.
if [ -n "${BASH_VERSION:-}" ] && [ -n "${PS1:-}" ]; then
  __apgstack_last=""
  __apgstack_log_command() {
    local entry from=${SSH_CLIENT:-local}
    entry=$(HISTTIMEFORMAT='' builtin history 1)
    # An empty line repeats the previous history entry: log each entry once.
    if [ -n "$entry" ] && [ "$entry" != "$__apgstack_last" ]; then
      __apgstack_last=$entry
      logger -p local6.info -t bash-history -- "user=$USER from=${from%% *} pwd=$PWD cmd=$(printf '%s' "$entry" | sed 's/^ *[0-9]* *//')"
    fi
  }
  case ";${PROMPT_COMMAND:-};" in
    *";__apgstack_log_command;"*) ;;
    *) PROMPT_COMMAND="__apgstack_log_command${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
  esac
fi
