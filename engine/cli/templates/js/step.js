// The `greet` step of {{name}}: one function from input to output (the JS SDK is vendored
// in `.crm/sdk-js` by `crm`).

import { Output, info, records, step } from './.crm/sdk-js/crm-sdk.js';

export const run = step((input) => {
  const name = input.setting('name') ?? input.setting('record')?.name ?? 'there';
  const contacts = records.findContacts({ limit: 200 }); // needs records:read
  info('greeting', { name, contacts: contacts.length }); // needs log
  return Output.json({ text: `Hello, ${name}! The CRM has ${contacts.length} contact(s).` });
});
