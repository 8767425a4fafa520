/** The six logger methods nodemailer's and imapflow's loggers call, each made by `log(level)`. */
export function loggerLevels<F>(log: (level: string) => F) {
  return {
    trace: log('trace'),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    fatal: log('fatal'),
  };
}
