/**
 * `test()`: `Deno.test` with the resource and op sanitizers turned on, so that a test that
 * leaves a socket, a file or a timer open fails. Deno 2 leaves them off by default.
 */
export function test(name: string, fn: () => Promise<void> | void): void;
export function test(
  name: string,
  options: { ignore?: boolean; sanitize?: boolean },
  fn: () => Promise<void> | void,
): void;
export function test(
  name: string,
  optionsOrFn: { ignore?: boolean; sanitize?: boolean } | (() => Promise<void> | void),
  maybeFn?: () => Promise<void> | void,
): void {
  const options = typeof optionsOrFn === "function" ? {} : optionsOrFn;
  const fn = typeof optionsOrFn === "function" ? optionsOrFn : maybeFn!;
  const sanitize = options.sanitize ?? true;
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    sanitizeOps: sanitize,
    sanitizeResources: sanitize,
    sanitizeExit: true,
    fn,
  });
}
